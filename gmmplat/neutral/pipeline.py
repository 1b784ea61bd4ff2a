"""The whole neutral-GMM build, as run by ``gmmplat build`` and the notebook: files in, folder out.

Steps: read the map (and model) → build (model, map or combined) → amplitudes
to map units → refine in 3D Fourier space with the Cα backbone regularizer →
optional small GMM + transition matrix → masks → write ``gmm.npz``,
``gmm_centres.pdb``, ``gmm_map.mrc``, ``fsc.csv``, ``fsc.png``, ``build.json``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..io.atomic import atomic_write_path
from ..io.models import read_model
from ..io.mrc import read_map
from ..model.gmm import GMM
from ..model.masks import apply_mask_spec
from ..physics.fsc import plot_fsc, write_fsc_csv
from ..regularizers import REGULARIZERS
from .combine import build_combined, default_mask_radius
from .export import write_centres_pdb, write_gmm_map
from .from_map import build_from_map, default_threshold, sigma_for_resolution
from .from_model import build_from_model, check_model_overlaps_map
from .hierarchy import add_hierarchy, small_gmm_from_map, small_gmm_kmeans
from .refine import gmm_map_fsc, refine_gmm, scale_to_map

OUTPUT_FILES = ("gmm.npz", "gmm_centres.pdb", "gmm_map.mrc", "fsc.csv", "fsc.png", "build.json")


@dataclass
class BuildOptions:
    """Options of one build (the CLI flags of ``gmmplat build``; lengths in Å)."""

    map_path: str
    out_dir: str
    model_path: str | None = None
    selection: str = "ca"
    chains: str | None = None
    residues: str | None = None
    n_gaussians: int | None = None
    n_pseudoatoms: int | None = None
    threshold: float | None = None
    resolution_angstrom: float = 6.0
    combine: bool = False
    mask_radius_angstrom: float | None = None
    refine_steps: int = 200
    bond_weight: float = 0.1
    angle_weight: float = 1.0
    weighting: str = "projection"
    small_gmm: int = 0
    small_from: str = "kmeans"
    small_resolution_angstrom: float = 20.0
    transition_s_angstrom: float | None = None
    masks: list[str] = field(default_factory=list)
    seed: int = 0
    threads: int | None = 1


def build_neutral_gmm(opts: BuildOptions, log=print, write_dir: str | os.PathLike | None = None) -> tuple[GMM, dict]:
    """Run the build; returns the GMM and the report written to ``build.json``.

    Files go to ``write_dir`` when given (a temporary folder renamed onto ``opts.out_dir``
    by the caller), else to ``opts.out_dir``.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name, t0):
        timings[name] = round(time.perf_counter() - t0, 3)

    if opts.combine and opts.model_path is None:
        raise ConfigError("--combine needs --model")
    if opts.small_from not in ("kmeans", "map"):
        raise ConfigError(f"--small-from must be kmeans or map, got {opts.small_from!r}")
    out = Path(write_dir if write_dir is not None else opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    mp = read_map(opts.map_path)
    d = float(opts.resolution_angstrom)
    threshold = default_threshold(mp.data) if opts.threshold is None else float(opts.threshold)
    model = None
    if opts.model_path is not None:
        model = read_model(opts.model_path, selection=opts.selection, chains=opts.chains, residues=opts.residues)
        check_model_overlaps_map(model, mp, d, threshold, opts.map_path)
    if model is None:
        gmm = build_from_map(mp, d, opts.n_gaussians, threshold, opts.seed, map_path=opts.map_path)
    elif opts.combine:
        gmm = build_combined(model, mp, d, opts.n_gaussians, opts.n_pseudoatoms, threshold,
                             opts.mask_radius_angstrom, opts.seed, opts.map_path)
    else:
        gmm = build_from_model(model, mp, d, opts.n_gaussians, opts.seed, opts.map_path)
    gmm, scales = scale_to_map(gmm, mp, d, opts.weighting)
    lap("build", t0)
    log(f"built {gmm.n} Gaussians ({_origin_counts(gmm)}) in {timings['build']:.1f} s")

    t0 = time.perf_counter()
    f0, c0, fsc_before = gmm_map_fsc(gmm, mp)
    regularizer = None
    if "bonds" in gmm.extras and opts.bond_weight > 0:
        regularizer = REGULARIZERS.build("ca_backbone", gmm, weight=opts.bond_weight, angle_weight=opts.angle_weight)
    result = None
    if opts.refine_steps > 0:
        result = refine_gmm(gmm, mp, d, steps=opts.refine_steps, regularizer=regularizer, weighting=opts.weighting,
                            threads=opts.threads)
        gmm = result.gmm
    freq, curve, res05 = gmm_map_fsc(gmm, mp)
    lap("refine", t0)
    log(f"refined {opts.refine_steps} steps in {timings['refine']:.1f} s; FSC 0.5 {fsc_before:.2f} -> {res05:.2f} Å")

    t0 = time.perf_counter()
    small_report = None
    if opts.small_gmm:
        if opts.small_from == "kmeans":
            small = small_gmm_kmeans(gmm, opts.small_gmm, opts.seed)
        else:
            small = small_gmm_from_map(mp, opts.small_gmm, opts.small_resolution_angstrom, threshold=threshold,
                                       seed=opts.seed, map_path=opts.map_path)
        add_hierarchy(gmm, small, opts.transition_s_angstrom)
        s = opts.transition_s_angstrom or 0.1 * gmm.box * gmm.pixel_size_angstrom
        small_report = {"n": int(small.shape[0]), "from": opts.small_from, "transition_s_angstrom": s}
    mask_counts = {}
    for spec in opts.masks:
        sel = apply_mask_spec(gmm, spec, opts.model_path)
        mask_counts[spec.partition("=")[0].strip()] = int(sel.sum())
    lap("hierarchy_and_masks", t0)

    t0 = time.perf_counter()
    if model is not None:
        gmm.extras.update(model_record(opts.model_path, opts.selection))
    gmm.save(out / "gmm.npz")
    write_centres_pdb(out / "gmm_centres.pdb", gmm)
    write_gmm_map(out / "gmm_map.mrc", gmm, mp.origin_angstrom)
    write_fsc_csv(out / "fsc.csv", freq, curve)
    plot_fsc(out / "fsc.png", freq, curve, title=f"GMM ({gmm.n} Gaussians) vs {Path(opts.map_path).name}",
             target_resolution_angstrom=d)
    lap("write", t0)
    report = {
        "options": dataclasses.asdict(opts),
        "n_gaussians": gmm.n,
        "n_per_origin": _origin_counts(gmm),
        "threshold": threshold,
        "sigma_rule": "sigma = resolution / (pi * sqrt(2))",
        "sigma_for_resolution_angstrom": sigma_for_resolution(d),
        "mask_radius_angstrom": (opts.mask_radius_angstrom or default_mask_radius(d)) if opts.combine else None,
        "amplitude_scales_per_origin": [float(s) for s in scales],
        "ca_bonds": int(len(gmm.extras.get("bonds", []))),
        "ca_angles": int(len(gmm.extras.get("angles", []))),
        "refine": None if result is None else {
            "steps": opts.refine_steps, "seconds": round(result.seconds, 3),
            "data_loss_first": result.data_loss[0], "data_loss_last": result.data_loss[-1],
            "regularizer_loss_last": result.regularizer_loss[-1]},
        "fsc05_resolution_angstrom_before_refinement": fsc_before,
        "fsc05_resolution_angstrom": res05,
        "fsc_mean_to_resolution_before_refinement": _mean_to(f0, c0, d),
        "fsc_mean_to_resolution": _mean_to(freq, curve, d),
        "small_gmm": small_report,
        "masks": mask_counts,
        "timings_seconds": timings,
        "seconds_total": round(time.perf_counter() - t_start, 3),
    }
    with atomic_write_path(out / "build.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=_json_default))
    log(f"wrote {', '.join(OUTPUT_FILES)} to {opts.out_dir} ({report['seconds_total']:.1f} s)")
    return gmm, report


def model_record(model_path, selection: str) -> dict:
    """GMM extras naming the model it was built from: ``model_selection`` and
    ``model_residue_number`` ``(n_atoms_total,)`` (checked when a model is morphed)."""
    full = read_model(model_path)
    numbers = np.full(full.n_atoms_total, np.iinfo(np.int64).min, dtype=np.int64)
    numbers[full.atom_index] = full.residue_number
    return {"model_selection": np.asarray(str(selection)), "model_residue_number": numbers}


def _mean_to(freq: np.ndarray, curve: np.ndarray, resolution_angstrom: float) -> float:
    """Mean FSC over shells ``0 < k ≤ 1/d``: how well the band the refinement fits is matched."""
    sel = (freq > 0) & (freq <= 1.0 / resolution_angstrom + 1e-9)
    return float(np.mean(curve[sel]))


def _origin_counts(gmm: GMM) -> dict[str, int]:
    origin = np.asarray(gmm.extras.get("origin", np.zeros(gmm.n)), dtype=np.int64)
    return {"model": int((origin == 0).sum()), "pseudoatom": int((origin == 1).sum())}


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
