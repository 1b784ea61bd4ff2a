"""Runs beside the oracle (``gmmplat evaluate --oracle``): how far each run has come.

For a simulated dataset, :func:`oracle_report` computes (or reuses) the oracle
(:mod:`gmmplat.analysis.oracle`) on a seeded subset of particles, the trivial answer on the
same particles (a random latent for |Spearman| and kNN R², the unmorphed neutral model for
the Cα RMSD), and scores every run on the same particles.  Each run score is shown with
its **fraction of the way** from the trivial answer to the oracle:
``(run − trivial) / (oracle − trivial)`` (for the RMSD ``(neutral − run) / (neutral − oracle)``):
0 is no better than trivial, 1 reaches the oracle.

The oracle's scores are cached in ``DATASET/oracle.json`` (reused while the dataset's
``metadata.json``, the subset and ``k`` are unchanged).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..io.atomic import atomic_write_path, write_json
from .oracle import load_simulated_dataset, oracle_scores, run_oracle, trivial_scores

#: (score key, label, higher is better)
COMPARED = (("spearman_abs", "|Spearman|", True), ("knn_r2", "kNN R²", True),
            ("mean_frame_rmsd_angstrom", "Cα RMSD (Å)", False))


def fraction(run: float, trivial: float, oracle: float) -> float | None:
    """``(run − trivial) / (oracle − trivial)``; None when the oracle is no better than trivial."""
    gap = oracle - trivial
    if not np.isfinite(gap) or abs(gap) < 1e-9 or run is None or not np.isfinite(run):
        return None
    return float((run - trivial) / gap)


def oracle_for(dataset: str | os.PathLike, n_particles: int | None = 1000, seed: int = 0, k: int = 10,
               progress: bool = False, cache: bool = True, pose_samples: int = 0, pose_particles: int = 300) -> dict:
    """``{"oracle": scores, "trivial": scores, "rows": [...], ...}`` for a dataset, cached in ``oracle.json``.

    On a dataset simulated with pose errors the oracle is told the true poses; ``pose_samples`` > 0 adds
    ``"oracle_pose_marginal"``: the oracle that knows only the stated poses and the errors' sizes
    (:func:`gmmplat.analysis.oracle.run_oracle`), on ``pose_particles`` of the particles.  Its Monte Carlo
    estimate rises with the samples (docs/benchmarks.md, "Real data"), so it is a lower bound of that limit.
    """
    from .oracle import has_pose_errors

    ds = load_simulated_dataset(dataset)
    pose_samples = int(pose_samples) if has_pose_errors(ds) else 0
    key = {"created": ds.metadata.get("created"), "seed_dataset": ds.metadata.get("seed"),
           "n_particles": int(n_particles or 0), "seed": int(seed), "k": int(k)}
    if pose_samples:
        key.update(pose_samples=pose_samples, pose_particles=int(pose_particles))
    path = ds.path / "oracle.json"
    if cache and path.is_file():
        try:
            old = json.loads(path.read_text())
            if old.get("key") == key:
                return old
        except (ValueError, OSError):
            pass
    res = run_oracle(ds, n_particles, seed=seed, progress=progress)
    out = {
        "key": key, "dataset": str(ds.path.absolute()),
        "subset": f"{len(res.rows)} of {len(ds.table)} particles (seeded random choice, seed {seed})",
        "rows": res.rows.tolist(),
        "oracle": oracle_scores(ds, res, k=k, seed=seed),
        "trivial": {**trivial_scores(res.t_true, k=k, seed=seed),
                    "mean_frame_rmsd_angstrom": None},
    }
    out["trivial"]["mean_frame_rmsd_angstrom"] = out["oracle"]["mean_neutral_rmsd_angstrom"]
    if pose_samples:
        marginal = run_oracle(ds, pose_particles, seed=seed, progress=progress, pose_samples=pose_samples)
        out["oracle_pose_marginal"] = {**oracle_scores(ds, marginal, k=k, seed=seed), "pose_samples": pose_samples,
                                       "rows": marginal.rows.tolist()}
    if cache:
        try:
            write_json(path, out, default=float)
        except OSError:  # a read-only dataset: nothing cached
            pass
    return out


def compare(run_scores: dict, oracle: dict) -> dict:
    """``{key: {"run", "oracle", "trivial", "fraction"}}`` for the compared scores (see :data:`COMPARED`)."""
    out = {}
    for key, _, _ in COMPARED:
        if run_scores.get(key) is None:
            continue
        o, t = oracle["oracle"][key], oracle["trivial"][key]
        out[key] = {"run": run_scores[key], "oracle": o, "trivial": t, "fraction": fraction(run_scores[key], t, o)}
    return out


def score_runs_against_oracle(dataset: str | os.PathLike, run_dirs: list, n_particles: int | None = 1000,
                              seed: int = 0, k: int = 10, s_angstrom: float | None = None,
                              morph_reference: str = "median", progress: bool = False,
                              write: bool = True, pose_samples: int = 0) -> tuple[dict, dict]:
    """Oracle and every run's scores; writes each run's ``scores.json`` and per-residue CSV/PNG when ``write``.

    Returns ``(oracle, {run name: scores})``; each run's scores are those of
    :func:`gmmplat.analysis.runs.score_run` on all particles, plus ``oracle_comparison``
    (:func:`compare` on the oracle's particles).
    """
    from .amplitude import per_residue_png
    from .runs import load_analysis_run, score_run

    dataset = Path(dataset)
    oracle = oracle_for(dataset, n_particles, seed, k, progress=progress, pose_samples=pose_samples)
    files = [dataset / n for n in ("truth.csv", "truth_frames.pdb", "neutral_model.pdb")]
    rows = np.asarray(oracle["rows"], dtype=np.int64)
    results = {}
    for run_dir in run_dirs:
        ar = load_analysis_run(run_dir)
        kw = dict(k=k, seed=seed, s_angstrom=s_angstrom, morph_reference=morph_reference)
        scores = score_run(ar, *files, **kw)
        subset = score_run(ar, *files, rows=rows, **kw)
        scores["oracle_comparison"] = {"subset": oracle["subset"], **compare(subset, oracle)}
        if "oracle_pose_marginal" in oracle:
            marginal = oracle["oracle_pose_marginal"]
            on = score_run(ar, *files, rows=np.asarray(marginal["rows"], dtype=np.int64), **kw)
            scores["oracle_pose_marginal_comparison"] = {
                key: {"run": on.get(key), "oracle": marginal[key]} for key, _, _ in COMPARED}
        scores["oracle"] = {key: oracle["oracle"][key] for key, _, _ in COMPARED}
        name = Path(run_dir).name
        results[name] = scores
        if write:
            run_dir = Path(run_dir)
            if "per_residue" in scores:
                table = pd.DataFrame(scores["per_residue"])
                with atomic_write_path(run_dir / "per_residue_rmsd.csv") as tmp:
                    table.to_csv(tmp, index=False)
                per_residue_png(run_dir / "per_residue_rmsd.png", table,
                                title=f"{name}: amplitude ratio {scores.get('amplitude_ratio', float('nan')):.2f}")
            write_json(run_dir / "scores.json", scores, default=float)
    return oracle, results


def comparison_table(oracle: dict, results: dict) -> pd.DataFrame:
    """One row for the trivial answer, one for the oracle, one per run: scores and fractions."""
    rows = [{"run": "trivial (random latent / neutral model)",
             **{label: oracle["trivial"][key] for key, label, _ in COMPARED}},
            {"run": "oracle", **{label: oracle["oracle"][key] for key, label, _ in COMPARED},
             "amplitude ratio": oracle["oracle"].get("amplitude_ratio")}]
    for name, s in results.items():
        row = {"run": name}
        for key, label, _ in COMPARED:
            c = s["oracle_comparison"].get(key)
            row[label] = None if c is None else c["run"]
            row[f"{label} fraction"] = None if c is None else c["fraction"]
        row["amplitude ratio"] = s.get("amplitude_ratio")
        if "junk_auc" in s:
            row["junk AUC (quality)"] = s["junk_auc"]
        for mk, mv in s.items():
            if mk.startswith("amplitude_ratio_"):
                row[f"amplitude ratio {mk[len('amplitude_ratio_'):]}"] = mv
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def format_report(oracle: dict, results: dict) -> str:
    """Lines for the terminal: the oracle line and each run's scores with their fractions."""
    o, t = oracle["oracle"], oracle["trivial"]
    lines = [f"oracle on {oracle['subset']}: |Spearman| {o['spearman_abs']:.3f}, kNN R² {o['knn_r2']:.3f}, "
             f"Cα RMSD {o['mean_frame_rmsd_angstrom']:.2f} Å (MAP frames {o['mean_frame_rmsd_map_angstrom']:.2f} Å), "
             f"MAP frame right {100 * o['map_frame_accuracy']:.0f}%",
             f"trivial: |Spearman| {t['spearman_abs']:.3f}, kNN R² {t['knn_r2']:.3f} (random latent); "
             f"Cα RMSD {t['mean_frame_rmsd_angstrom']:.2f} Å (neutral model)"]
    if o.get("n_junk"):
        lines.append(f"junk: {o['n_junk']} particles simulated as junk are left out of every score")
    if "oracle_pose_marginal" in oracle:
        m = oracle["oracle_pose_marginal"]
        lines.append(f"the oracle above knows the true poses; told only the stated ones ({m['pose_samples']} pose "
                     f"samples, {m['n_particles']} particles): |Spearman| {m['spearman_abs']:.3f}, Cα RMSD "
                     f"{m['mean_frame_rmsd_angstrom']:.2f} Å")
    for name, s in results.items():
        parts = []
        for key, label, _ in COMPARED:
            c = s["oracle_comparison"].get(key)
            if c is not None:
                frac = "n/a" if c["fraction"] is None else f"{c['fraction']:.2f}"
                fmt = ".2f" if key.endswith("angstrom") else ".3f"
                parts.append(f"{label} {c['run']:{fmt}} ({frac} of the way)")
        if "junk_auc" in s:
            parts.append(f"junk ROC AUC of quality.npy {s['junk_auc']:.3f}")
        if "amplitude_ratio" in s:
            amp = ", ".join(f"{k[len('amplitude_ratio_'):]} {v:.2f}" for k, v in s.items()
                            if k.startswith("amplitude_ratio_"))
            parts.append(f"amplitude ratio {s['amplitude_ratio']:.2f}" + (f" ({amp})" if amp else ""))
        lines.append(f"{name}: " + ", ".join(parts))
    return "\n".join(lines)


def oracle_comparison(run_dirs: list, n_particles: int | None = 1000, seed: int = 0, k: int = 10,
                      progress: bool = False, write: bool = False) -> pd.DataFrame:
    """:func:`comparison_table` for runs on any simulated datasets, grouped by dataset (a ``dataset`` column).

    Each run's dataset is the folder of its STAR file; runs whose folder holds no simulated
    dataset (``metadata.json``) are left out.
    """
    from .runs import dataset_dir, load_analysis_run

    by_dataset: dict[Path, list] = {}
    for run_dir in run_dirs:
        data = dataset_dir(load_analysis_run(run_dir))
        if data is not None and (data / "metadata.json").is_file():
            by_dataset.setdefault(data, []).append(run_dir)
    tables = []
    for data, dirs in sorted(by_dataset.items()):
        oracle, results = score_runs_against_oracle(data, dirs, n_particles, seed, k, progress=progress, write=write)
        table = comparison_table(oracle, results)
        table.insert(0, "dataset", data.name)
        tables.append(table)
    return pd.concat(tables) if tables else pd.DataFrame()
