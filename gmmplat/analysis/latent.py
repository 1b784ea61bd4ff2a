"""Latent-space analysis: PCA, trajectories along eigenvectors, k-means states, neighbours.

A latent array is ``(n, d)`` (one row per STAR particle) or, for symmetry-expanded
runs, ``(n, K, d)`` (one row per particle and symmetry copy).  Every function here
takes the flattened ``(n·K, d)`` view (:func:`flatten_latent`); per-particle values
(truth, defocus, ...) are repeated K times to colour the same rows.

Trajectories follow the paper (TRPV1, GLP-1R results): along each of the first
``k`` eigenvectors, ``n`` frames spread evenly over the range of PC scores holding
98 % of the particles (1st to 99th percentile), all other PC scores at zero (the
mean latent point).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, InputError


def flatten_latent(latent: np.ndarray, values: np.ndarray | None = None, path=None):
    """``(n, d)`` or ``(n, K, d)`` -> ``(n·K, d)`` float64; ``values (n, ...)`` repeated K times.

    Returns ``rows`` or ``(rows, values_repeated)`` when ``values`` is given.
    Raises :class:`InputError` (naming ``path``) for any other shape or non-finite values.
    """
    z = np.asarray(latent)
    if z.ndim not in (2, 3) or z.shape[-1] < 1 or z.shape[0] < 1:
        raise InputError(path, f"latent array must be (n, d) or (n, K, d), got shape {z.shape}")
    if not np.all(np.isfinite(z)):
        raise InputError(path, "latent array holds NaN or infinite values")
    K = 1 if z.ndim == 2 else z.shape[1]
    rows = z.reshape(-1, z.shape[-1]).astype(np.float64)
    if values is None:
        return rows
    v = np.asarray(values)
    if v.shape[0] != z.shape[0]:
        raise InputError(path, f"latent has {z.shape[0]} particles but {v.shape[0]} values were given")
    return rows, np.repeat(v, K, axis=0)


@dataclass
class LatentPCA:
    """PCA of latent rows.

    Attributes:
        mean: ``(d,)`` mean latent point.
        components: ``(k, d)`` unit eigenvectors, by decreasing variance (sign fixed so
            that the largest-magnitude entry is positive, for reproducibility).
        explained_variance: ``(k,)`` variance of each PC score (latent units²).
        explained_variance_ratio: ``(k,)`` fraction of the total variance.
        scores: ``(rows, k)`` PC scores of the rows PCA was fitted on.
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    scores: np.ndarray

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def latent_dim(self) -> int:
        return int(self.components.shape[1])

    def transform(self, z: np.ndarray) -> np.ndarray:
        """Latent points ``(m, d)`` -> PC scores ``(m, k)``."""
        return (np.asarray(z, dtype=np.float64) - self.mean) @ self.components.T

    def inverse(self, scores: np.ndarray) -> np.ndarray:
        """PC scores ``(m, k')``, ``k' <= k`` -> latent points ``(m, d)``."""
        s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        return self.mean + s @ self.components[: s.shape[1]]


def fit_pca(latent: np.ndarray, n_components: int | None = None) -> LatentPCA:
    """PCA (scikit-learn) of a latent array ``(n, d)`` or ``(n, K, d)``.

    ``n_components`` defaults to ``d``; asking for more than ``d`` is a :class:`ConfigError`.
    """
    from sklearn.decomposition import PCA

    z = flatten_latent(latent)
    d = z.shape[1]
    k = d if n_components is None else int(n_components)
    check_pcs(k, d)
    if z.shape[0] < 2:
        raise ConfigError(f"PCA needs at least 2 latent rows, got {z.shape[0]}")
    k = min(k, z.shape[0])
    pca = PCA(n_components=k, svd_solver="full").fit(z)
    comps = pca.components_.astype(np.float64)
    flip = np.sign(comps[np.arange(k), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(flip == 0, 1.0, flip)[:, None]
    mean = pca.mean_.astype(np.float64)
    return LatentPCA(
        mean=mean,
        components=comps,
        explained_variance=pca.explained_variance_.astype(np.float64),
        explained_variance_ratio=np.nan_to_num(pca.explained_variance_ratio_.astype(np.float64)),
        scores=(z - mean) @ comps.T,
    )


def check_pcs(n_pcs: int, latent_dim: int) -> None:
    """One-line :class:`ConfigError` when more PCs are asked for than the latent space has."""
    if int(n_pcs) < 1:
        raise ConfigError(f"number of principal components must be >= 1, got {n_pcs}")
    if int(n_pcs) > int(latent_dim):
        raise ConfigError(
            f"asked for {n_pcs} principal components but the latent space has only {latent_dim} dimension(s)"
        )


@dataclass
class Trajectories:
    """Latent trajectories along principal components.

    Attributes:
        z: ``(k, n, d)`` latent points, ``z[i, j]`` is frame ``j`` along PC ``i+1``.
        scores: ``(k, n)`` the PC score of each frame (other PC scores are 0).
        pcs: ``(k,)`` 1-based PC numbers.
        low_percentile, high_percentile: the score range spanned (default 1st–99th).
    """

    z: np.ndarray
    scores: np.ndarray
    pcs: np.ndarray
    low_percentile: float
    high_percentile: float


def pc_trajectories(
    pca: LatentPCA,
    n_pcs: int = 3,
    n_frames: int = 10,
    low_percentile: float = 1.0,
    high_percentile: float = 99.0,
    pcs: list[int] | None = None,
) -> Trajectories:
    """Frames along each of the first ``n_pcs`` eigenvectors (or the 1-based ``pcs`` given).

    Frame scores are ``linspace(P_low, P_high, n_frames)`` of the PC score over the
    particles PCA was fitted on (98 % of them lie between the 1st and 99th percentile).
    """
    chosen = list(range(1, int(n_pcs) + 1)) if pcs is None else [int(p) for p in pcs]
    for p in chosen:
        check_pcs(p, pca.latent_dim)
        if p > pca.n_components:
            raise ConfigError(f"PC {p} asked for but the PCA kept only {pca.n_components} components")
    if int(n_frames) < 2:
        raise ConfigError(f"a trajectory needs at least 2 frames, got {n_frames}")
    if not 0 <= low_percentile < high_percentile <= 100:
        raise ConfigError(f"percentile range {low_percentile}–{high_percentile} is not increasing within 0–100")
    zs, scores = [], []
    for p in chosen:
        s = pca.scores[:, p - 1]
        lo, hi = np.percentile(s, [low_percentile, high_percentile])
        frame_scores = np.linspace(lo, hi, int(n_frames))
        scores.append(frame_scores)
        zs.append(pca.mean + frame_scores[:, None] * pca.components[p - 1][None, :])
    return Trajectories(
        z=np.stack(zs), scores=np.stack(scores), pcs=np.asarray(chosen),
        low_percentile=float(low_percentile), high_percentile=float(high_percentile),
    )


def kmeans_states(latent: np.ndarray, n_states: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """k-means of latent rows: ``(centres (n_states, d), labels (rows,))`` (scikit-learn, seeded)."""
    from sklearn.cluster import KMeans

    z = flatten_latent(latent)
    if not 1 <= int(n_states) <= z.shape[0]:
        raise ConfigError(f"number of k-means states must be within 1..{z.shape[0]}, got {n_states}")
    km = KMeans(n_clusters=int(n_states), n_init=10, random_state=int(seed)).fit(z)
    return km.cluster_centers_.astype(np.float64), km.labels_.astype(np.int64)


def nearest_rows(latent: np.ndarray, z: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(k,)`` of the ``k`` latent rows nearest (Euclidean) to the point ``z (d,)``, nearest first.

    Row ``r`` of an ``(n, K, d)`` latent is particle ``r // K``, symmetry copy ``r % K``.
    """
    rows = flatten_latent(latent)
    point = np.asarray(z, dtype=np.float64).reshape(-1)
    if point.shape[0] != rows.shape[1]:
        raise ConfigError(f"latent point has {point.shape[0]} dimensions, the latent space {rows.shape[1]}")
    k = int(k)
    if not 1 <= k <= rows.shape[0]:
        raise ConfigError(f"number of nearest particles must be within 1..{rows.shape[0]}, got {k}")
    dist = np.sum((rows - point) ** 2, axis=1)
    idx = np.argpartition(dist, k - 1)[:k]
    return idx[np.argsort(dist[idx], kind="stable")]
