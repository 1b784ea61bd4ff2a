"""``gmmplat morph``: an atomic model morphed by the run's decoded GMM (multi-model PDB + mmCIF).

Examples::

    gmmplat morph --run runs/hinge --model neutral_model.pdb --out pc1.pdb              # PC 1, 10 frames
    gmmplat morph --run runs/hinge --model neutral_model.pdb --out pc2.pdb --pc 2 --frames 20
    gmmplat morph --run runs/hinge --model neutral_model.pdb --out state.pdb --z 0.1,-0.3,0,0.2
    gmmplat morph --run runs/hinge --model neutral_model.pdb --out path.cif --z "0,0,0,0; 0.5,0,0,0"

The model must be fitted in the consensus map (world coordinates); both ``F.pdb``
and ``F.cif`` are written (open in ChimeraX with the maps of ``gmmplat analyze``).
"""
from __future__ import annotations

import argparse

import numpy as np

from ._common import add_shared_options, positive_int, refuse_existing



def add_arguments(p: argparse.ArgumentParser) -> None:
    add_shared_options(p, "--run")
    p.add_argument("--model", required=True, help="atomic model fitted in the consensus map (PDB/mmCIF)")
    p.add_argument("--out", required=True, help="output .pdb or .cif (the other format is written beside it)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pc", type=positive_int, default=None, help="principal component to follow (default 1)")
    where.add_argument("--z", help="latent point(s): comma-separated values, points separated by ';'")
    p.add_argument("--frames", type=positive_int, default=10, help="frames along the PC (default 10)")
    p.add_argument("--latent", help="latent .npy instead of RUN/latent.npy (for the PCA)")
    add_shared_options(p, "--s-angstrom", "--morph-reference", "--overwrite")


def parse_points(text: str, latent_dim: int) -> np.ndarray:
    """``"a,b,c; d,e,f"`` -> ``(F, d)``; a one-line :class:`ConfigError` for a wrong length or a non-number."""
    from ..errors import ConfigError

    points = []
    for part in [s for s in text.split(";") if s.strip()]:
        try:
            values = [float(v) for v in part.replace(" ", ",").split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"--z: {part.strip()!r} is not a comma-separated list of numbers") from None
        if len(values) != latent_dim:
            raise ConfigError(f"--z: point {part.strip()!r} has {len(values)} values, the latent space {latent_dim}")
        points.append(values)
    if not points:
        raise ConfigError("--z: no latent point given")
    return np.asarray(points, dtype=np.float64)


def run(args: argparse.Namespace) -> int:
    from ..analysis.latent import check_pcs, fit_pca, pc_trajectories
    from ..analysis.morph import displacement, morphed_model_paths, write_morphed_models
    from ..analysis.morph_reference import run_morpher
    from ..analysis.runs import load_analysis_run
    from ..io.atomic import check_output_path
    from ..io.models import read_model

    check_output_path(args.out, "--out", folder=False, create_parents=False)
    refuse_existing(morphed_model_paths(args.out), args.overwrite)
    ar = load_analysis_run(args.run, args.latent)
    if args.z:
        z = parse_points(args.z, ar.latent_dim)
        what = f"{len(z)} latent point(s)"
    else:
        pc = 1 if args.pc is None else args.pc
        check_pcs(pc, ar.latent_dim)
        z = pc_trajectories(fit_pca(ar.latent), pcs=[pc], n_frames=args.frames).z[0]
        what = f"PC {pc}, {args.frames} frames over the 1st-99th percentile"
    model = read_model(args.model)
    morpher = run_morpher(ar, model, reference=args.morph_reference, s_angstrom=args.s_angstrom)
    frames = morpher.morph(ar.decode_fn, z)
    paths = write_morphed_models(args.out, model, frames)
    d = displacement(frames)
    print(f"morph: {len(model)} atoms, {what}; first-to-last displacement mean {d.mean():.2f} Å, "
          f"max {d.max():.2f} Å; wrote {', '.join(str(p) for p in paths)}")
    return 0
