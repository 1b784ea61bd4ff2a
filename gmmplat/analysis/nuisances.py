"""What a run made of the nuisances of a simulated dataset: junk found, poses corrected.

For the realistic sample datasets (``gmmplat simulate --realistic``), whose ``truth.csv`` records
each particle's junk flag and kind, B-factor, scale and true pose:

* :func:`nuisance_summary`: one row per nuisance, as simulated;
* :func:`junk_report`: the run's fit quality (``quality.npy``) and fitted scale (``fit_scale.npy``)
  per kind of particle, the ROC AUC of each for telling particles from junk, and what the junk rule
  (:func:`gmmplat.refine.latent.junk_mask`) keeps and leaves out;
* :func:`pose_error_table`: the STAR file's pose and origin errors against the truth, before and
  after the run's corrections (``pose_correction.npy``);
* :func:`bfactor_report`: the run's fitted B-factors (``fit_bfactor.npy``) against the simulated ones.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..refine.latent import DEFAULT_JUNK_SCALE, junk_mask
from .quality import load_fit_bfactor, load_fit_scale, load_quality
from .runs import junk_flags


def _truth(dataset: Path) -> pd.DataFrame:
    from .evaluate import load_truth

    truth = load_truth(dataset / "truth.csv")
    if "junk_kind" in truth.columns:
        truth["junk_kind"] = truth["junk_kind"].fillna("").astype(str)
    return truth


def particle_kind(truth: pd.DataFrame) -> np.ndarray:
    """``(n,)`` str: ``particle``, or the junk kind of each row of a truth table."""
    return np.where(junk_flags(truth), truth.get("junk_kind", "junk"), "particle")


def nuisance_summary(dataset: str | os.PathLike) -> pd.DataFrame:
    """The simulated nuisances of ``dataset`` (a ``gmmplat simulate`` folder), one row each."""
    dataset = Path(dataset)
    truth = _truth(dataset)
    rows = []
    if "junk" in truth.columns:
        kinds = truth.loc[truth["junk"] == 1, "junk_kind"].value_counts().to_dict()
        rows.append({"nuisance": "junk", "value": f"{int(truth['junk'].sum())} of {len(truth)} "
                                                  f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items())) or 'none'})"})
    if "bfactor_angstrom2" in truth.columns:
        b = truth["bfactor_angstrom2"].to_numpy(dtype=np.float64)
        rows.append({"nuisance": "B-factor (Å²)", "value": f"{b.min():.0f} to {b.max():.0f}"})
    if "scale" in truth.columns:
        rows.append({"nuisance": "scale (σ of log)", "value": f"{np.std(np.log(truth['scale'])):.3f}"})
    errors = pose_error_table(dataset)
    if errors is not None:
        rows.append({"nuisance": "pose error (median °)", "value": f"{errors.loc['stated', 'median rotation (°)']:.2f}"})
        rows.append({"nuisance": "origin error (median Å)", "value": f"{errors.loc['stated', 'median origin (Å)']:.2f}"})
    return pd.DataFrame(rows).set_index("nuisance")


def junk_report(dataset: str | os.PathLike, run_dir: str | os.PathLike,
                share: float = DEFAULT_JUNK_SCALE) -> tuple[pd.DataFrame, dict]:
    """``(table, summary)``: median quality and fitted scale per kind (``particle`` and each junk kind),
    and in ``summary`` the ROC AUCs, the junk threshold and what the rule keeps and leaves out."""
    from sklearn.metrics import roc_auc_score

    truth = _truth(Path(dataset))
    q = load_quality(run_dir, len(truth))
    s = load_fit_scale(run_dir, len(truth))
    kind = particle_kind(truth)
    table = pd.DataFrame({"kind": kind, "quality": q, "fitted scale": s}).groupby("kind").agg(
        n=("quality", "size"), median_quality=("quality", "median"), median_scale=("fitted scale", "median"))
    junk, threshold = junk_mask(s, share)
    is_junk = kind != "particle"
    summary = {"threshold_scale": threshold, "left_out": int(junk.sum()),
               "junk_left_out": int((junk & is_junk).sum()), "particles_left_out": int((junk & ~is_junk).sum())}
    if is_junk.any() and (~is_junk).any():
        summary.update(auc_quality=float(roc_auc_score(~is_junk, q)), auc_scale=float(roc_auc_score(~is_junk, s)))
    return table, summary


def bfactor_report(dataset: str | os.PathLike, run_dir: str | os.PathLike) -> dict:
    """The fitted B-factors of the particles that are not junk against the simulated ones: how many have a
    fit, the Spearman correlation of fitted and true B, and the median of each (Å²).

    The fitted B is the fall-off beyond the prediction's own (its Gaussians' widths), so the medians
    differ by that much; the correlation says how well single images fix their B."""
    from scipy.stats import spearmanr

    truth = _truth(Path(dataset))
    if "bfactor_angstrom2" not in truth.columns:
        raise InputError(Path(dataset) / "truth.csv", "holds no B-factors (simulate with --bfactor-range)")
    fitted = load_fit_bfactor(run_dir, len(truth))
    true = truth["bfactor_angstrom2"].to_numpy(dtype=np.float64)
    particle = ~junk_flags(truth)
    ok = particle & np.isfinite(fitted)
    rho = float(spearmanr(fitted[ok], true[ok])[0]) if ok.sum() > 2 and np.ptp(true[ok]) > 0 else float("nan")
    return {"particles_fitted": int(ok.sum()), "particles": int(particle.sum()), "spearman": rho,
            "median_fitted_angstrom2": float(np.median(fitted[ok])) if ok.any() else float("nan"),
            "median_true_angstrom2": float(np.median(true[ok])) if ok.any() else float("nan")}


def _angles_deg(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    cos = (np.trace(A @ np.swapaxes(B, 1, 2), axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def pose_error_table(dataset: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> pd.DataFrame | None:
    """Median and 90th-percentile rotation (°) and origin (Å) errors of the particles (junk left out):
    ``stated`` (the STAR file) and, with a run holding ``pose_correction.npy``, ``corrected``.
    None when ``truth.csv`` holds no true poses."""
    import torch

    from ..io.star import read_particle_star
    from ..physics.geometry import euler_to_matrix
    from ..synthetic.simulate import TRUE_POSE_COLUMNS

    dataset = Path(dataset)
    truth = _truth(dataset)
    if not all(c in truth.columns for c in TRUE_POSE_COLUMNS):
        return None
    star = read_particle_star(dataset / "particles.star").table
    ok = ~junk_flags(truth)

    def matrices(tab):
        return euler_to_matrix(*(torch.tensor(tab[c].to_numpy(dtype=np.float64)) for c in
                                 ("rot_deg", "tilt_deg", "psi_deg"))).numpy()

    A_true, A_star = matrices(truth), matrices(star)
    o_true = truth[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy(dtype=np.float64)
    o_star = star[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy(dtype=np.float64)
    cases = {"stated": (A_star, o_star)}
    path = None if run_dir is None else Path(run_dir) / "pose_correction.npy"
    if path is not None and path.is_file():
        from ..synthetic.nuisance import rotvec_matrices

        c = np.load(path).astype(np.float64)
        if len(c) == len(star):  # one item per particle (no symmetry expansion)
            R = rotvec_matrices(np.radians(c[:, :3]))
            cases["corrected"] = (R @ A_star, o_star + c[:, 3:])
    rows = {}
    for name, (A, o) in cases.items():
        rot, d = _angles_deg(A, A_true)[ok], np.linalg.norm(o - o_true, axis=1)[ok]
        rows[name] = {"median rotation (°)": np.median(rot), "90 % rotation (°)": np.percentile(rot, 90),
                      "median origin (Å)": np.median(d), "90 % origin (Å)": np.percentile(d, 90)}
    return pd.DataFrame(rows).T
