"""``gmmplat analyze``: trajectories along latent PCs, maps per frame, morphed models, plots.

Examples::

    gmmplat analyze --run runs/hinge
    gmmplat analyze --run runs/hinge --pcs 3 --frames 10 --model neutral_model.pdb --map consensus_map.mrc
    gmmplat analyze --run runs/hinge --reconstruct 300 --truth truth.csv --states 4

Writes into ``--out`` (default ``RUN/analysis``): ``pca.json``, ``latent_pca.png``,
``pc_histograms.png``, ``trajectories.npy`` (k, n, d) and ``trajectories.csv``,
``maps/pcP_frameNN.mrc`` (decoded GMM), ``recon/pcP_frameNN.mrc`` (with
``--reconstruct K``), ``models/pcP.pdb`` + ``.cif`` with ``pcP_displacement.csv``,
``pcP_per_residue.csv``, ``displacement_pcP.png``, ``per_residue_pcP.png`` (with
``--model``), ``rigid_pcP_<domain>.csv`` + ``.png`` (GMMs with domain masks) and
``kmeans.npz`` (with ``--states``), and ``chimerax.cxc`` (+ ``domains.cmm``) that shows it
all in ChimeraX (``chimerax RUN/analysis/chimerax.cxc``).  See docs/analysis.md.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ._common import nonnegative_int, positive_float, positive_int

HELP = "analyse a trained run: latent PCA, trajectories, maps and morphed models per frame"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run folder written by gmmplat train")
    p.add_argument("--out", help="output folder (default RUN/analysis), written whole on success")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out (refused otherwise)")
    p.add_argument("--pcs", type=positive_int, default=None,
                   help="trajectories along the first N principal components (default 3, or d if the latent has fewer)")
    p.add_argument("--frames", type=positive_int, default=10, help="frames per trajectory (default 10)")
    p.add_argument("--model", help="atomic model fitted in the consensus map (PDB/mmCIF) to morph")
    p.add_argument("--map", help="consensus map: maps are written with its voxel size and origin")
    p.add_argument("--latent", help="latent .npy to analyse instead of RUN/latent.npy")
    p.add_argument("--truth", help="truth.csv of a simulated dataset: colours the latent plot by t")
    p.add_argument("--reconstruct", type=nonnegative_int, default=0, metavar="K",
                   help="also reconstruct each frame from its K nearest particles (default 0: off)")
    p.add_argument("--snr", type=positive_float, default=1.0, help="Wiener term 1/SNR of the reconstructions (default 1)")
    p.add_argument("--states", type=nonnegative_int, default=0, help="k-means states of the latent (default 0: off)")
    p.add_argument("--s-angstrom", type=positive_float, help="width of the GMM→atom transition (default: Gaussian spacing)")
    p.add_argument("--seed", type=int, default=0, help="seed of k-means (default 0)")
    from .particle_args import add_particle_arguments

    add_particle_arguments(p, required=False)  # --reconstruct: the run's particles, unless named here


def _map_frame(args, neutral):
    """Voxel size and origin for written maps: the consensus map's, else the GMM box's."""
    from ..analysis.maps import map_origin_angstrom
    from ..errors import InputError
    from ..io.mrc import read_map

    apix, box = float(neutral.pixel_size_angstrom), int(neutral.box)
    if not args.map:
        return apix, map_origin_angstrom(neutral)
    m = read_map(args.map)
    if m.data.shape != (box,) * 3 or abs(m.voxel_size_angstrom - apix) > 1e-3 * apix:
        raise InputError(args.map, f"map is {m.data.shape[::-1]} voxels of {m.voxel_size_angstrom:g} Å; "
                                   f"the run's GMM box is {box}³ of {apix:g} Å")
    return apix, np.asarray(m.origin_angstrom, dtype=np.float64)


def run(args: argparse.Namespace) -> int:
    from ..analysis.latent import check_pcs
    from ..analysis.runs import load_analysis_run
    from ..io.atomic import staged_folder

    ar = load_analysis_run(args.run, args.latent)
    if args.pcs is None:
        args.pcs = min(3, ar.latent_dim)
    check_pcs(args.pcs, ar.latent_dim)
    final = Path(args.out) if args.out else Path(args.run) / "analysis"
    with staged_folder(final, overwrite=args.overwrite) as out:
        summary = _analyze(args, ar, out)
    print(f"{summary} written to {final}")
    return 0


def _analyze(args: argparse.Namespace, ar, out: Path) -> str:
    """Write every output into ``out``; return the summary line."""
    import pandas as pd

    from ..analysis import plots
    from ..analysis.evaluate import check_rows, load_truth
    from ..analysis.latent import fit_pca, flatten_latent, kmeans_states, pc_trajectories
    from ..analysis.maps import decoded_maps, reconstruct_near, write_volume
    from ..analysis.rigid_report import rigid_motion
    from ..analysis.runs import domain_masks
    from ..io.atomic import atomic_write_path

    neutral, decode_fn = ar.neutral, ar.decode_fn
    apix, origin = _map_frame(args, neutral)

    truth = None
    if args.truth:
        truth = load_truth(args.truth)
        check_rows(ar.latent, len(truth), ar.latent_path, args.truth)
    rows = flatten_latent(ar.latent)
    colour = None if truth is None else flatten_latent(ar.latent, truth["t"].to_numpy())[1]

    pca = fit_pca(ar.latent)
    traj = pc_trajectories(pca, n_pcs=args.pcs, n_frames=args.frames)
    _write_json(out / "pca.json", {
        "mean": pca.mean.tolist(), "components": pca.components.tolist(),
        "explained_variance": pca.explained_variance.tolist(),
        "explained_variance_ratio": pca.explained_variance_ratio.tolist(),
        "trajectory_percentiles": [traj.low_percentile, traj.high_percentile],
    })
    with atomic_write_path(out / "trajectories.npy") as tmp:
        np.save(tmp, traj.z)
    table = pd.DataFrame([
        {"pc": int(p), "frame": j, "score": float(traj.scores[i, j]),
         **{f"z{c + 1}": float(traj.z[i, j, c]) for c in range(ar.latent_dim)}}
        for i, p in enumerate(traj.pcs) for j in range(args.frames)
    ])
    _write_csv(out / "trajectories.csv", table)
    scores2 = pca.scores[:, :2]
    plots.latent_scatter_png(out / "latent_pca.png", scores2, values=colour, value_label="truth t" if truth is not None else "",
                             axis_labels=("PC 1", "PC 2" if pca.n_components > 1 else ""),
                             trajectory=pca.transform(traj.z[0])[:, :2])
    plots.pc_histograms_png(out / "pc_histograms.png", pca.scores[:, : args.pcs], traj.scores)
    if args.states:
        centres, labels = kmeans_states(rows, args.states, seed=args.seed)
        with atomic_write_path(out / "kmeans.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, centres=centres, labels=labels)

    morpher = atom_model = None
    if args.model:
        from ..analysis.morph import ModelMorpher
        from ..io.models import read_model

        atom_model = read_model(args.model)
        morpher = ModelMorpher(neutral, atom_model, s_angstrom=args.s_angstrom)
    reader = table_star = sym_ops = None
    if args.reconstruct > 0:
        reader, table_star, sym_ops = _particles(ar, args)
    masks = domain_masks(ar.run.model, neutral)

    for i, p in enumerate(traj.pcs):
        z = traj.z[i]
        maps = decoded_maps(decode_fn, z, neutral.box, apix)
        (out / "maps").mkdir(exist_ok=True)
        for j, vol in enumerate(maps):
            write_volume(out / "maps" / f"pc{p}_frame{j:02d}.mrc", vol, apix, origin)
        if reader is not None:
            (out / "recon").mkdir(exist_ok=True)
            for j in range(len(z)):
                vol, _ = reconstruct_near(ar.latent, z[j], args.reconstruct, table_star, reader.__getitem__, apix,
                                          sym_ops, snr=args.snr, invert_contrast=ar.run.config.data.invert_contrast)
                write_volume(out / "recon" / f"pc{p}_frame{j:02d}.mrc", vol, apix, origin)
        if morpher is not None:
            _morph_outputs(out, p, z, decode_fn, morpher, atom_model)
        for name, mask in masks.items():
            if int(np.sum(mask)) < 3:
                continue
            rep = rigid_motion(decode_fn, z, neutral.params, mask)
            rep.insert(1, "score", traj.scores[i])
            _write_csv(out / f"rigid_pc{p}_{name}.csv", rep)
            plots.rigid_motion_png(out / f"rigid_pc{p}_{name}.png", rep, title=f"domain {name}, PC {p}")
    from ..analysis.chimerax import write_analysis_cxc

    write_analysis_cxc(out, list(traj.pcs), args.frames, neutral, origin, masks, args.map, atom_model)
    return (f"analyze: PCA of {rows.shape[0]} latent rows (d={ar.latent_dim}); explained variance "
            + ", ".join(f"PC{k + 1} {100 * r:.0f}%" for k, r in enumerate(pca.explained_variance_ratio[: args.pcs]))
            + f"; {len(traj.pcs)} trajectories x {args.frames} frames")


def _particles(ar, args):
    """Stack reader, particle table and symmetry operators for reconstructions."""
    from ..errors import InputError
    from ..geometry import symmetry_operators
    from ..io.stacks import StackReader
    from ..analysis.runs import run_particles
    from .particle_args import open_particles

    if args.star is not None or args.cs is not None:
        star = open_particles(args)
        if len(star.table) != ar.latent.shape[0]:
            raise InputError(star.path, f"has {len(star.table)} particles but the latent has {ar.latent.shape[0]} rows")
    elif ar.star_path is None:
        raise InputError(ar.run.config.data.star or None, "the run's STAR file is not found; cannot reconstruct "
                                                          "(name it with --star or --cs)")
    else:
        star = run_particles(ar)
    ops = symmetry_operators(ar.run.config.data.symmetry) if ar.latent.ndim == 3 else None
    return StackReader(star), star.table, ops


def _morph_outputs(out: Path, p: int, z, decode_fn, morpher, atom_model) -> None:
    from ..analysis import plots
    from ..analysis.morph import displacement, per_residue_displacement, write_morphed_models

    (out / "models").mkdir(exist_ok=True)
    frames = morpher.morph(decode_fn, z)
    write_morphed_models(out / "models" / f"pc{p}.pdb", atom_model, frames)
    d = displacement(frames)
    per_atom = {"chain_id": atom_model.chain_id, "residue_number": atom_model.residue_number,
                "residue_name": atom_model.residue_name, "atom_name": atom_model.atom_name,
                "displacement_angstrom": d}
    import pandas as pd

    _write_csv(out / "models" / f"pc{p}_displacement.csv", pd.DataFrame(per_atom))
    res = per_residue_displacement(atom_model, d)
    _write_csv(out / "models" / f"pc{p}_per_residue.csv", res)
    plots.displacement_histogram_png(out / f"displacement_pc{p}.png", d, title=f"PC {p}: first to last frame")
    plots.per_residue_png(out / f"per_residue_pc{p}.png", res, title=f"PC {p}")


def _write_json(path: Path, obj) -> None:
    from ..io.atomic import atomic_write_path

    with atomic_write_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2) + "\n")


def _write_csv(path: Path, df) -> None:
    from ..io.atomic import atomic_write_path

    with atomic_write_path(path) as tmp:
        df.to_csv(tmp, index=False)
