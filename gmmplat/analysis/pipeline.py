"""The whole analysis of a trained run in one call: :func:`analyze_run` (``gmmplat analyze``).

PCA of the latent, trajectories along the first principal components, a decoded map
per frame, optionally reconstructions, morphed atomic models, rigid-domain reports,
k-means states and scores against a simulated dataset's truth, PNG figures and a
``chimerax.cxc`` that shows it all.  Everything is written into a temporary folder
renamed onto ``out`` on success, so a failed analysis leaves nothing (docs/analysis.md).
"""
from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..io.atomic import write_json
from . import plots
from .frame_outputs import (
    write_csv, write_decoded_maps, write_morph_outputs, write_reconstructions, write_rigid_reports,
)
from .latent import LatentPCA, Trajectories, check_pcs, fit_pca, flatten_latent, kmeans_states, pc_trajectories
from .maps import map_origin_angstrom
from .runs import AnalysisRun, domain_masks, load_analysis_run, run_particles

__all__ = ["AnalysisResult", "analyze_run", "map_frame"]


@dataclass
class AnalysisResult:
    """What :func:`analyze_run` computed and wrote.

    Attributes:
        out: the analysis folder.
        summary: one line (explained variance, trajectories x frames).
        pca: the latent PCA; trajectories: the latent points ``z (k, n, d)`` along the PCs.
        files: every file written, sorted; figures: the PNG figures by name (``latent_pca``, ...).
        states: ``(centres (K, d), labels (rows,))`` of the k-means states, or None.
        scores: the ``gmmplat evaluate`` scores against the truth (``scores.json``), or None.

    In a notebook the object shows its summary and figures.
    """

    out: Path
    summary: str
    pca: LatentPCA
    trajectories: Trajectories
    files: list[Path] = field(default_factory=list)
    figures: dict[str, Path] = field(default_factory=dict)
    states: tuple[np.ndarray, np.ndarray] | None = None
    scores: dict | None = None

    def _repr_html_(self) -> str:
        images = "".join(
            f'<figure style="display:inline-block;margin:4px"><img src="data:image/png;base64,'
            f'{base64.b64encode(p.read_bytes()).decode()}" style="max-width:420px"/>'
            f"<figcaption>{html.escape(name)}</figcaption></figure>"
            for name, p in self.figures.items() if p.is_file())
        where = f"{len(self.files)} files in <code>{html.escape(str(self.out))}</code>"
        return f"<p>{html.escape(self.summary)}<br/>{where}</p>{images}"


def map_frame(neutral, map_path: str | os.PathLike | None) -> tuple[float, np.ndarray]:
    """Voxel size (Å) and origin (Å, ``(3,)``) of written maps: the consensus map's, else the GMM box's.

    A consensus map whose box or voxel size differs from the GMM's is a one-line InputError.
    """
    from ..io.mrc import read_map

    apix, box = float(neutral.pixel_size_angstrom), int(neutral.box)
    if not map_path:
        return apix, map_origin_angstrom(neutral)
    m = read_map(map_path)
    if m.data.shape != (box,) * 3 or abs(m.voxel_size_angstrom - apix) > 1e-3 * apix:
        raise InputError(map_path, f"map is {m.data.shape[::-1]} voxels of {m.voxel_size_angstrom:g} Å; "
                                   f"the run's GMM box is {box}³ of {apix:g} Å")
    return apix, np.asarray(m.origin_angstrom, dtype=np.float64)


def analyze_run(run: str | os.PathLike | AnalysisRun, out: str | os.PathLike | None = None, *,
                pcs: int | None = None, frames: int = 10, model: str | os.PathLike | None = None,
                map_path: str | os.PathLike | None = None, latent: str | os.PathLike | None = None,
                truth: str | os.PathLike | None = None, truth_frames: str | os.PathLike | None = None,
                reconstruct: int = 0, snr: float = 1.0, particles=None, states: int = 0,
                s_angstrom: float | None = None, seed: int = 0, morph_reference: str = "median",
                overwrite: bool = False, progress: bool = False,
                allow_other_particles: bool = False) -> AnalysisResult:
    """Analyse a trained run into ``out`` (default ``RUN/analysis``); see docs/analysis.md for the files.

    Args:
        run: a run folder (loaded with its ``latent.npy``, or ``latent``) or a loaded
            :class:`~gmmplat.analysis.runs.AnalysisRun`.
        pcs: trajectories along the first ``pcs`` principal components (default 3, or d if fewer).
        frames: frames per trajectory.
        model: atomic model fitted in the consensus map (PDB/mmCIF) to morph along each trajectory.
        map_path: consensus map; written maps take its voxel size and origin.
        truth: ``truth.csv`` of a simulated dataset: colours the latent plot by ``t`` and
            writes ``scores.json``; truth_frames: its ``truth_frames.pdb`` (frames of ``model``)
            adds the Cα RMSD of the morphed model.
        reconstruct: reconstruct each frame from its ``reconstruct`` nearest particles (0: off),
            with Wiener term ``1/snr``; ``particles`` (a ParticleStar, rows as the latent's)
            replaces the run's own particle file.
        states: k-means states of the latent (0: off), seeded by ``seed``.
        s_angstrom: width of the GMM→atom transition (default: the Gaussians' spacing).
        morph_reference: ``"median"`` (the model moves by the decoded motion from the latent
            median: it stands for the median particle) or ``"neutral"`` (offsets from the neutral
            GMM); see :func:`gmmplat.analysis.morph_reference.run_morpher`.
        overwrite: replace a non-empty ``out`` (refused otherwise).
        progress: a progress bar over the trajectories (maps, reconstructions, models).
        allow_other_particles: reconstruct from particles that are not the ones the run was
            trained on (its recorded ``data_fingerprint``; refused otherwise), printing what differs.

    ``analysis.json`` beside the outputs records the run, every option, the seed and the
    versions (python, torch, numpy, gmmplat), so the analysis can be repeated.
    """
    from ..io.atomic import staged_folder

    if isinstance(run, AnalysisRun) and latent is not None:
        raise ConfigError("latent goes with a run folder; a loaded AnalysisRun brings its own latent")
    ar = run if isinstance(run, AnalysisRun) else load_analysis_run(run, latent)
    pcs = min(3, ar.latent_dim) if pcs is None else pcs
    check_pcs(pcs, ar.latent_dim)
    final = Path(out) if out is not None else Path(ar.run.run_dir) / "analysis"
    if reconstruct > 0:  # before any work: the particles are the run's (or deliberately others)
        particles = _reconstruction_particles(ar, particles, allow_other_particles)
    options = dict(pcs=pcs, frames=frames, model=model, map_path=map_path, truth=truth, truth_frames=truth_frames,
                   reconstruct=reconstruct, snr=snr, particles=particles, states=states, s_angstrom=s_angstrom,
                   seed=seed, morph_reference=morph_reference)
    with staged_folder(final, overwrite=overwrite) as staging:
        result = _analyze(ar, staging, progress=progress, **options)
        write_json(staging / "analysis.json", _record(ar, options))
    result.out = final
    result.files = sorted(p for p in final.rglob("*") if p.is_file())
    result.figures = {p.stem: p for p in result.files if p.suffix == ".png"}
    return result


def _analyze(ar: AnalysisRun, out: Path, *, pcs, frames, model, map_path, truth, truth_frames, reconstruct, snr,
             particles, states, s_angstrom, seed, morph_reference, progress=False) -> AnalysisResult:
    """Write every output into ``out``; the result's paths are filled in by the caller."""
    from .chimerax import write_analysis_cxc

    neutral, decode_fn = ar.neutral, ar.decode_fn
    apix, origin = map_frame(neutral, map_path)
    truth_t = _truth_values(ar, truth)
    pca, traj = _latent_outputs(ar, out, pcs, frames, truth_t)
    kmeans = _states(ar, out, states, seed) if states else None
    scores = _scores(ar, out, truth, truth_frames, model, s_angstrom, seed, morph_reference) if truth else None

    morpher = atom_model = None
    if model:
        from ..io.models import read_model
        from .morph_reference import run_morpher

        atom_model = read_model(model)
        morpher = run_morpher(ar, atom_model, reference=morph_reference, s_angstrom=s_angstrom)
    recon = _reconstruction_inputs(ar, particles) if reconstruct > 0 else None
    masks = domain_masks(ar.run.model, neutral)
    from tqdm.auto import tqdm

    for i, p in enumerate(tqdm(traj.pcs, desc="analyze: trajectories", unit="PC", disable=not progress)):
        z = traj.z[i]
        write_decoded_maps(out, p, z, decode_fn, neutral.box, apix, origin)
        if recon is not None:
            table, read_image, sym_ops = recon
            write_reconstructions(out, p, z, ar.latent, reconstruct, table, read_image, apix, origin, sym_ops,
                                  snr=snr, invert_contrast=ar.run.config.data.invert_contrast)
        if morpher is not None:
            write_morph_outputs(out, p, z, decode_fn, morpher, atom_model)
        write_rigid_reports(out, p, z, traj.scores[i], decode_fn, neutral.params, masks)
    write_analysis_cxc(out, list(traj.pcs), frames, neutral, origin, masks, map_path, atom_model)
    n_rows = flatten_latent(ar.latent).shape[0]
    summary = (f"analyze: PCA of {n_rows} latent rows (d={ar.latent_dim}); explained variance "
               + ", ".join(f"PC{k + 1} {100 * r:.0f}%" for k, r in enumerate(pca.explained_variance_ratio[:pcs]))
               + f"; {len(traj.pcs)} trajectories x {frames} frames")
    return AnalysisResult(out, summary, pca, traj, states=kmeans, scores=scores)


def _record(ar: AnalysisRun, options: dict) -> dict:
    """``analysis.json``: the run, the options (paths as given; particles by file), seed and versions."""
    from ..records import environment

    opts = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in options.items() if k != "particles"}
    particles = options.get("particles")
    opts["particles"] = None if particles is None else str(getattr(particles, "path", particles))
    return {"run": str(ar.run.run_dir), "latent": str(ar.latent_path), "options": opts,
            "environment": environment(options["seed"], None, "cpu", 1)}


def _truth_values(ar: AnalysisRun, truth) -> np.ndarray | None:
    """The truth's ``t`` per latent row (None without a truth file); row counts checked."""
    if not truth:
        return None
    from .evaluate import check_rows, load_truth

    table = load_truth(truth)
    check_rows(ar.latent, len(table), ar.latent_path, truth)
    return flatten_latent(ar.latent, table["t"].to_numpy())[1]


def _latent_outputs(ar: AnalysisRun, out: Path, pcs: int, frames: int, truth_t) -> tuple[LatentPCA, Trajectories]:
    """``pca.json``, ``trajectories.npy/.csv``, ``latent_pca.png``, ``pc_histograms.png``."""
    import pandas as pd

    from ..io.atomic import atomic_write_path

    pca = fit_pca(ar.latent)
    traj = pc_trajectories(pca, n_pcs=pcs, n_frames=frames)
    write_json(out / "pca.json", {
        "mean": pca.mean.tolist(), "components": pca.components.tolist(),
        "explained_variance": pca.explained_variance.tolist(),
        "explained_variance_ratio": pca.explained_variance_ratio.tolist(),
        "trajectory_percentiles": [traj.low_percentile, traj.high_percentile],
    })
    with atomic_write_path(out / "trajectories.npy") as tmp:
        np.save(tmp, traj.z)
    write_csv(out / "trajectories.csv", pd.DataFrame([
        {"pc": int(p), "frame": j, "score": float(traj.scores[i, j]),
         **{f"z{c + 1}": float(traj.z[i, j, c]) for c in range(ar.latent_dim)}}
        for i, p in enumerate(traj.pcs) for j in range(frames)
    ]))
    plots.latent_scatter_png(out / "latent_pca.png", pca.scores[:, :2], values=truth_t,
                             value_label="truth t" if truth_t is not None else "",
                             axis_labels=("PC 1", "PC 2" if pca.n_components > 1 else ""),
                             trajectory=pca.transform(traj.z[0])[:, :2])
    plots.pc_histograms_png(out / "pc_histograms.png", pca.scores[:, :pcs], traj.scores)
    return pca, traj


def _states(ar: AnalysisRun, out: Path, n_states: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``kmeans.npz``: centres and labels of ``n_states`` k-means states of the latent rows."""
    from ..io.atomic import atomic_write_path

    centres, labels = kmeans_states(flatten_latent(ar.latent), n_states, seed=seed)
    with atomic_write_path(out / "kmeans.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, centres=centres, labels=labels)
    return centres, labels


def _scores(ar: AnalysisRun, out: Path, truth, truth_frames, model, s_angstrom, seed, morph_reference) -> dict:
    """``scores.json``: the ``gmmplat evaluate`` scores (with ``truth_frames``: Cα RMSD of the morphed model)."""
    from .runs import score_run

    scores = score_run(ar, truth, truth_frames, model if truth_frames else None, seed=seed, s_angstrom=s_angstrom,
                       morph_reference=morph_reference)
    write_json(out / "scores.json", scores)
    return scores


def _reconstruction_particles(ar: AnalysisRun, particles, allow_other: bool):
    """The particles to reconstruct from (given, else the run's own file), checked against the run's
    recorded fingerprint (:func:`gmmplat.train.fingerprint.check_run_particles`)."""
    from ..records import check_run_particles

    if particles is not None:
        if len(particles.table) != ar.latent.shape[0]:
            raise InputError(particles.path, f"has {len(particles.table)} particles but the latent has "
                                             f"{ar.latent.shape[0]} rows")
    elif ar.star_path is None:
        raise InputError(ar.run.config.data.star or None, "the run's STAR file is not found; cannot reconstruct "
                                                          "(name it with --star or --cs)")
    else:
        particles = run_particles(ar)
    note = check_run_particles(ar.run.run_dir, particles.table, particles.path, allow_other)
    if note:
        print(f"note: {note}", flush=True)
    return particles


def _reconstruction_inputs(ar: AnalysisRun, particles) -> tuple:
    """``(table, read_image, symmetry_operators)`` of the (checked) particles to reconstruct from."""
    from ..io.stacks import StackReader
    from ..physics.geometry import symmetry_operators

    ops = symmetry_operators(ar.run.config.data.symmetry) if ar.latent.ndim == 3 else None
    return particles.table, StackReader(particles).__getitem__, ops
