"""Hierarchical GMMs: a small GMM (< 100 Gaussians) whose motion drives the large one.

* :func:`small_gmm_kmeans`: k-means of the large GMM's centres weighted by each
  Gaussian's integrated mass ``a (2πσ²)^{3/2}`` (amplitude-weighted for equal
  widths); each small Gaussian matches the mass and second moment of its cluster.
* :func:`small_gmm_from_map`: pseudoatoms seeded on the map and refined against it
  at low resolution (default 20 Å), as the paper does.
* :func:`transition_matrix` ``(M, N)``: ``W[m, n] = exp(-D²/(2 s²))`` between
  source ``m`` and target ``n``, each column normalised to sum 1 (our choice),
  so ``offsets_target = Wᵀ offsets_source`` moves every target by exactly the
  common translation when all sources translate rigidly. The paper's
  ``exp(-50 D²)`` with ``D`` in units of the box length ``L`` is the same kernel with
  ``s = L / 10`` (``50 D²/L² = D²/(2 s²)``); :func:`default_transition_s`.
  The same function maps GMM offsets onto the atoms of a model (the atomic
  model as one more layer).

Extras written by :func:`add_hierarchy`: ``small_params (M, 5)``, ``transition (M, N)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError
from ..io.mrc import MapData
from ..model.gmm import AMPLITUDE, GMM, WIDTH, XYZ
from .from_map import build_from_map
from .refine import refine_gmm, scale_to_map

MAX_SMALL = 99  # "a few (< 100)"


def default_transition_s(gmm: GMM) -> float:
    """The paper's kernel width: ``s = 0.1 × box length`` (Å)."""
    return 0.1 * gmm.box * gmm.pixel_size_angstrom


def transition_matrix(source_xyz, target_xyz, s_angstrom: float, normalize: bool = True):
    """Weights ``(M, N)`` from sources ``(M, 3)`` to targets ``(N, 3)`` (Å).

    ``W[m, n] = exp(-|x_m - y_n|² / (2 s²))``; with ``normalize`` each column
    sums to 1 (computed as a softmax over sources, so targets far from every
    source still get finite weights). Computed in float64. Returns a torch
    tensor for tensor input (the floating dtype of the tensor inputs, on their
    device), else a float64 numpy array.
    """
    tensors = [t for t in (source_xyz, target_xyz) if torch.is_tensor(t)]
    device = tensors[0].device if tensors else None
    src = torch.as_tensor(source_xyz, dtype=torch.float64, device=device)
    tgt = torch.as_tensor(target_xyz, dtype=torch.float64, device=device)
    if src.ndim != 2 or src.shape[1] != 3 or tgt.ndim != 2 or tgt.shape[1] != 3:
        raise ValueError(f"transition_matrix needs (M, 3) and (N, 3) coordinates, got {tuple(src.shape)}, {tuple(tgt.shape)}")
    if not s_angstrom > 0:
        raise ConfigError(f"transition kernel width must be positive, got {s_angstrom}")
    logits = -torch.cdist(src, tgt) ** 2 / (2.0 * float(s_angstrom) ** 2)
    W = torch.softmax(logits, dim=0) if normalize else torch.exp(logits)
    if tensors:
        dtype = torch.float32
        for t in tensors:
            dtype = torch.promote_types(dtype, t.dtype) if t.is_floating_point() else dtype
        return W.to(dtype)
    return W.numpy()


def propagate(transition, source_offsets):
    """Target offsets ``(..., N, k) = Wᵀ · source_offsets (..., M, k)`` for ``transition`` ``(M, N)``."""
    W = torch.as_tensor(transition)
    o = torch.as_tensor(source_offsets)
    return torch.einsum("mn,...mk->...nk", W.to(o.dtype), o)


def small_gmm_kmeans(gmm: GMM, n: int = 32, seed: int = 0) -> torch.Tensor:
    """Small GMM ``(n, 5)`` by mass-weighted k-means of ``gmm``'s centres (moment matching per cluster)."""
    from sklearn.cluster import KMeans

    _check_n(n, gmm.n)
    p = gmm.params.detach().double().numpy()
    xyz, amp, sig = p[:, XYZ], p[:, AMPLITUDE], p[:, WIDTH]
    mass = np.clip(amp, 1e-12, None) * (2 * math.pi * sig**2) ** 1.5
    km = KMeans(n_clusters=int(n), n_init=1, random_state=int(seed)).fit(xyz, sample_weight=mass)
    _, label = np.unique(km.labels_, return_inverse=True)
    m = int(label.max()) + 1
    msum = np.bincount(label, weights=mass, minlength=m)
    centres = np.stack([np.bincount(label, weights=mass * xyz[:, i], minlength=m) for i in range(3)], 1) / msum[:, None]
    second = np.bincount(label, weights=mass * (sig**2 + ((xyz - centres[label]) ** 2).sum(1) / 3), minlength=m) / msum
    sigma = np.sqrt(second)
    out = np.concatenate([centres, (msum / (2 * math.pi * sigma**2) ** 1.5)[:, None], sigma[:, None]], 1)
    return torch.as_tensor(out, dtype=torch.float32)


def small_gmm_from_map(map_data: MapData, n: int = 32, resolution_angstrom: float = 20.0, steps: int = 150,
                       threshold: float | None = None, seed: int = 0, map_path=None) -> torch.Tensor:
    """Small GMM ``(n, 5)``: ``n`` pseudoatoms on the map, refined against it up to ``resolution_angstrom``."""

    _check_n(n, None)
    coarse = build_from_map(map_data, resolution_angstrom, int(n), threshold, seed, map_path=map_path)
    coarse = scale_to_map(coarse, map_data, resolution_angstrom)[0]
    return refine_gmm(coarse, map_data, resolution_angstrom, steps=steps).gmm.params


def add_hierarchy(gmm: GMM, small_params: torch.Tensor, s_angstrom: float | None = None) -> np.ndarray:
    """Store ``small_params (M, 5)`` and ``transition (M, N)`` in ``gmm.extras``; returns the transition."""
    small = torch.as_tensor(small_params, dtype=torch.float32)
    _check_n(small.shape[0], None)
    s = default_transition_s(gmm) if s_angstrom is None else float(s_angstrom)
    W = transition_matrix(small[:, XYZ].double().numpy(), gmm.params[:, XYZ].double().numpy(), s)
    gmm.extras["small_params"] = small.numpy().astype(np.float32)
    gmm.extras["transition"] = W.astype(np.float32)
    return W


def _check_n(n: int, n_large: int | None) -> None:
    if not 1 <= int(n) <= MAX_SMALL:
        raise ConfigError(f"a small GMM has 1 to {MAX_SMALL} Gaussians, got {n}")
    if n_large is not None and int(n) > n_large:
        raise ConfigError(f"small GMM of {n} Gaussians from a GMM of only {n_large}")
