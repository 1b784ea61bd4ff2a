"""Scores of a latent space against the ground truth of a simulated dataset.

* ``spearman_abs``: |Spearman ρ| between the truth coordinate ``t`` and the best of the
  first three PC scores (sign and order of a latent space are arbitrary).
* ``knn_r2``: cross-validated R² of a k-nearest-neighbour regression of ``t`` on the latent
  (how much of the truth the latent holds, even when non-linearly).
* ``neighbour_overlap``: mean fraction of each particle's k nearest neighbours in the latent
  that are among its k nearest in truth (local structure kept); a random latent gives
  about ``k / (n − 1)`` (``neighbour_overlap_random``).
* ``frame_rmsd``: where the truth has atomic frames, the Cα RMSD (Å, no superposition:
  both are in the consensus map's frame) between the model morphed at the mean latent
  point of each frame's particles and the true frame, beside the neutral model's RMSD.

Symmetry-expanded latents ``(n, K, d)`` are scored on copy 0 (the particle's own pose).
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from .latent import flatten_latent, fit_pca


def particle_latent(latent: np.ndarray, path=None) -> np.ndarray:
    """One latent row per particle ``(n, d)``: the array itself, or copy 0 of an ``(n, K, d)`` one."""
    z = np.asarray(latent)
    flatten_latent(z, path=path)  # shape and finiteness checks
    return (z if z.ndim == 2 else z[:, 0]).astype(np.float64)


def check_rows(latent: np.ndarray, n_expected: int, latent_path, other_path, what: str = "particles") -> None:
    """One-line :class:`InputError` when the latent's row count differs from the STAR/truth file's."""
    n = int(np.shape(latent)[0])
    if n != int(n_expected):
        raise InputError(latent_path, f"latent has {n} rows but {os.fspath(other_path)} has {n_expected} {what}")


def load_truth(path: str | os.PathLike) -> pd.DataFrame:
    """``truth.csv`` (columns ``particle_index``, ``t``, optionally ``frame``), sorted by particle index."""
    if not os.path.isfile(path):
        raise InputError(path, "truth file not found")
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise InputError(path, f"not a readable CSV file ({type(exc).__name__}: {exc})") from None
    if "t" not in df.columns:
        raise InputError(path, f"truth file needs a column 't' (has: {', '.join(map(str, df.columns))})")
    for column in ("t", "particle_index", "frame"):
        if column in df.columns:
            values = pd.to_numeric(df[column], errors="coerce")
            bad = np.flatnonzero((values.isna() & df[column].notna()).to_numpy())
            if bad.size:
                raise InputError(path, f"column {column!r} holds a non-numeric value {str(df[column].iloc[bad[0]])!r} "
                                       f"at data row {bad[0] + 1} (rows counted from 1 after the header)")
            df[column] = values
    if "particle_index" in df.columns:
        df = df.sort_values("particle_index").reset_index(drop=True)
        if not np.array_equal(df["particle_index"].to_numpy(), np.arange(len(df))):
            raise InputError(path, "particle_index must hold 0..n-1, each once")
    if not np.all(np.isfinite(df["t"].to_numpy(dtype=np.float64))):
        raise InputError(path, "column 't' holds missing or non-finite values")
    return df


def spearman_best_pc(latent: np.ndarray, truth: np.ndarray, n_pcs: int = 3) -> tuple[float, int]:
    """``(|ρ|, 1-based PC)`` of the PC score (among the first ``n_pcs``) best correlated with ``truth``."""
    from scipy.stats import spearmanr

    z = particle_latent(latent)
    pca = fit_pca(z, min(n_pcs, z.shape[1]))
    best, which = 0.0, 1
    for i in range(pca.n_components):
        s = pca.scores[:, i]
        rho = 0.0 if np.ptp(s) == 0 else abs(float(spearmanr(s, truth).statistic))
        if np.isfinite(rho) and rho > best:
            best, which = rho, i + 1
    return best, which


def knn_r2(latent: np.ndarray, truth: np.ndarray, k: int = 10, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated R² of a k-nearest-neighbour regression (scikit-learn) of ``truth`` on the latent."""
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.neighbors import KNeighborsRegressor

    z = particle_latent(latent)
    k = int(min(k, max(1, len(z) * (folds - 1) // folds - 1)))
    pred = cross_val_predict(KNeighborsRegressor(n_neighbors=k), z, truth,
                             cv=KFold(folds, shuffle=True, random_state=int(seed)))
    return float(r2_score(truth, pred))


def neighbour_overlap(latent: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each particle's ``k`` latent neighbours among its ``k`` truth neighbours."""
    from sklearn.neighbors import NearestNeighbors

    z = particle_latent(latent)
    t = np.asarray(truth, dtype=np.float64).reshape(len(z), -1)
    k = int(min(k, len(z) - 1))
    if k < 1:
        raise ConfigError("neighbourhood overlap needs at least 2 particles")

    def neighbours(x):
        idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x, return_distance=False)
        # drop the point itself (not necessarily first when duplicates tie)
        out = np.empty((len(x), k), dtype=np.int64)
        for i, row in enumerate(idx):
            out[i] = row[row != i][:k]
        return out

    a, b = neighbours(z), neighbours(t)
    return float(np.mean([len(np.intersect1d(x, y, assume_unique=True)) / k for x, y in zip(a, b)]))


def read_model_frames(path: str | os.PathLike) -> np.ndarray:
    """Every model of a multi-model PDB/mmCIF as ``(F, n_atoms, 3)`` world Å, atoms in file order."""
    import gemmi

    if not os.path.isfile(path):
        raise InputError(path, "file not found")
    try:
        st = gemmi.read_structure(os.fspath(path))
    except Exception as exc:
        raise InputError(path, f"cannot read atomic model ({exc})") from None
    frames = [[(a.pos.x, a.pos.y, a.pos.z) for ch in m for r in ch for a in r] for m in st]
    sizes = {len(f) for f in frames}
    if not frames or sizes == {0}:
        raise InputError(path, "no atoms")
    if len(sizes) != 1:
        raise InputError(path, f"models hold different numbers of atoms ({sorted(sizes)})")
    return np.asarray(frames, dtype=np.float64)


def frame_rmsd(
    latent: np.ndarray,
    frame_of_particle: np.ndarray,
    truth_frames_xyz: np.ndarray,
    morph_fn: Callable[[np.ndarray], np.ndarray],
    neutral_xyz: np.ndarray,
) -> pd.DataFrame:
    """Cα RMSD per truth frame between the model morphed at the frame's mean latent point and the truth.

    Args:
        latent: ``(n, d)`` (or ``(n, K, d)``: copy 0).
        frame_of_particle: ``(n,)`` truth frame index of each particle.
        truth_frames_xyz: ``(F, n_ca, 3)`` true Cα positions per frame (world Å).
        morph_fn: latent points ``(m, d)`` -> morphed Cα ``(m, n_ca, 3)`` (world Å).
        neutral_xyz: ``(n_ca, 3)`` the unmorphed model.

    Returns:
        One row per frame holding particles: ``frame, n_particles, rmsd_angstrom, neutral_rmsd_angstrom``.
    """
    z = particle_latent(latent)
    frames = np.asarray(frame_of_particle, dtype=np.int64)
    present = [f for f in range(len(truth_frames_xyz)) if np.any(frames == f)]
    if not present:
        raise ConfigError("no particle belongs to any truth frame")
    centres = np.stack([z[frames == f].mean(0) for f in present])
    morphed = np.asarray(morph_fn(centres), dtype=np.float64)
    rows = []
    for j, f in enumerate(present):
        true = truth_frames_xyz[f]
        rows.append(dict(frame=f, n_particles=int(np.sum(frames == f)),
                         rmsd_angstrom=float(np.sqrt(np.mean(np.sum((morphed[j] - true) ** 2, axis=1)))),
                         neutral_rmsd_angstrom=float(np.sqrt(np.mean(np.sum((neutral_xyz - true) ** 2, axis=1))))))
    return pd.DataFrame(rows)


def evaluate_latent(latent: np.ndarray, truth: np.ndarray, k: int = 10, n_pcs: int = 3, seed: int = 0) -> dict:
    """All latent-vs-truth scores in one dict (see the module docstring)."""
    z = particle_latent(latent)
    t = np.asarray(truth, dtype=np.float64)
    if len(t) != len(z):
        raise ConfigError(f"latent has {len(z)} particles but the truth {len(t)}")
    rho, pc = spearman_best_pc(z, t, n_pcs)
    k_eff = int(min(k, len(z) - 1))
    return {
        "n_particles": int(len(z)),
        "latent_dim": int(z.shape[1]),
        "spearman_abs": rho,
        "spearman_pc": pc,
        "knn_r2": knn_r2(z, t, k=k, seed=seed),
        "neighbour_overlap": neighbour_overlap(z, t, k=k),
        "neighbour_overlap_random": k_eff / max(len(z) - 1, 1),
        "k": k_eff,
    }
