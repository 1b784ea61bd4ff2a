"""Every run of a folder at a glance: which load, on which dataset, with which decoders.

Used by notebook 06 (and handy after a batch of ``gmmplat train`` runs)::

    runs, table = load_runs("out/runs")
    detail = pick_run(table, oracle_table, dataset="hinge")
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ..errors import GmmplatError
from .runs import AnalysisRun, dataset_dir, find_runs, load_analysis_run

__all__ = ["load_runs", "pick_run"]


def load_runs(runs_dir: str | os.PathLike) -> tuple[dict[str, AnalysisRun], pd.DataFrame]:
    """Load every run (folder with ``model.pt``) under ``runs_dir``.

    Returns:
        ``(runs, table)``: the loaded runs by folder name, and one table row per folder
        (``status``: ``ok`` or why it could not be loaded, e.g. a decoder from a plugin that
        is not importable; ``dataset``, ``particles``, ``latent`` shape, ``decoders``,
        ``neutral GMM`` size).  A folder with no loadable run raises ``GmmplatError``.
    """
    runs, rows = {}, []
    for path in find_runs(runs_dir):
        try:
            ar = load_analysis_run(path)
        except GmmplatError as exc:
            rows.append({"run": path.name, "status": f"not loaded: {exc}"})
            continue
        data = dataset_dir(ar)
        runs[path.name] = ar
        rows.append({"run": path.name, "status": "ok", "dataset": data.name if data else None,
                     "particles": ar.latent.shape[0], "latent": "×".join(map(str, ar.latent.shape[1:])),
                     "decoders": ", ".join(type(d).__name__ for d in ar.run.model.decoder.decoders),
                     "neutral GMM": f"{ar.neutral.n} Gaussians"})
    if not runs:
        raise GmmplatError(f"no loadable run in {Path(runs_dir)} (a run folder holds model.pt)")
    return runs, pd.DataFrame(rows).set_index("run")


def pick_run(table: pd.DataFrame, scores: pd.DataFrame | None = None, dataset: str | None = None,
             score: str = "|Spearman|") -> str:
    """The run to show in detail: among the loaded runs (of ``dataset`` when it has any), the one
    with the best ``score`` column of ``scores`` (indexed by run name), else the first."""
    loaded = table.index[table["status"] == "ok"].tolist()
    if dataset is not None and "dataset" in table:
        loaded = [r for r in loaded if table.loc[r, "dataset"] == dataset] or loaded
    if scores is not None and score in scores and any(r in scores.index for r in loaded):
        ranked = [r for r in loaded if r in scores.index and pd.notna(scores.loc[r, score])]
        if ranked:
            return max(ranked, key=lambda r: float(scores.loc[r, score]))
    return loaded[0]
