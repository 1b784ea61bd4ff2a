"""Pseudoatom GMM from a density map: density-weighted k-means of the voxels above a threshold.

* Threshold: given, or :func:`default_threshold` (``median + max(3 σ_robust,
  0.1 (max − median))``, σ_robust = 1.4826 · MAD: the solvent dominates the
  median and MAD of a map, so this is 3 noise σ above solvent, but never below
  10 % of the peak in clean maps where the solvent is flat).
* Connected blobs of voxels above the threshold smaller than one Gaussian's
  volume are noise specks and are dropped.
* Number of pseudoatoms: given, or :func:`estimate_n_gaussians` — one per
  ``(SPACING_FACTOR · d)³`` of volume above the threshold (see ``docs/build.md``).
* Each centre is the density-weighted mean of its voxels; its width is the
  larger of the resolution width ``d/(π√2)`` and the voxels' rms spread per
  axis; its amplitude makes its integrated mass equal the cluster's density
  sum ``Σ ρ · voxel³`` (map units).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..errors import ConfigError, InputError
from ..io.mrc import MapData, box_centre_world_angstrom
from ..model.gmm import GMM

SPACING_FACTOR = 1.0


def sigma_for_resolution(resolution_angstrom: float) -> float:
    """Gaussian width (Å) for a target resolution: ``d / (π √2)``."""
    if not resolution_angstrom > 0:
        raise ConfigError(f"resolution must be positive, got {resolution_angstrom}")
    return float(resolution_angstrom) / (math.pi * math.sqrt(2.0))


def map_frame(map_data: MapData, path=None) -> tuple[int, float, np.ndarray]:
    """``(box, pixel_size_angstrom, box_centre_world_angstrom (3,))`` of a cubic map."""
    nz, ny, nx = map_data.data.shape
    if not nx == ny == nz:
        raise InputError(path, f"map is not cubic ({nx}x{ny}x{nz} voxels); GMMs need a cubic box")
    return nx, float(map_data.voxel_size_angstrom), box_centre_world_angstrom(map_data)


def default_threshold(data: np.ndarray) -> float:
    """Density threshold separating the molecule from solvent (see module docstring)."""
    d = np.asarray(data, dtype=np.float64)
    med = float(np.median(d))
    mad = float(np.median(np.abs(d - med)))
    return med + max(3.0 * 1.4826 * mad, 0.1 * (float(d.max()) - med))


def box_frame_xyz(box: int, pixel_size_angstrom: float, zyx_index: np.ndarray) -> np.ndarray:
    """Voxel indices ``(V, 3)`` ordered z, y, x -> positions ``(V, 3)`` x, y, z [Å from the box centre]."""
    return (np.asarray(zyx_index)[:, ::-1] - box // 2).astype(np.float64) * float(pixel_size_angstrom)


def density_centre_world(map_data: MapData, threshold: float) -> np.ndarray:
    """Density-weighted centre (x, y, z world Å) of the voxels above ``threshold``."""
    d = map_data.data
    idx = np.argwhere(d > threshold)
    w = d[tuple(idx.T)].astype(np.float64) - threshold
    w = w + 1e-12 if w.sum() <= 0 else w
    xyz_index = (idx[:, ::-1] * w[:, None]).sum(0) / w.sum()
    return np.asarray(map_data.origin_angstrom, dtype=np.float64) + xyz_index * map_data.voxel_size_angstrom


def volume_per_gaussian_angstrom3(resolution_angstrom: float) -> float:
    """``(SPACING_FACTOR · d)³`` Å³: the volume above threshold one pseudoatom stands for."""
    return (SPACING_FACTOR * float(resolution_angstrom)) ** 3


def estimate_n_gaussians(volume_angstrom3: float, resolution_angstrom: float) -> int:
    """Pseudoatoms for a volume above threshold at resolution ``d`` (at least 1)."""
    return max(1, int(math.ceil(volume_angstrom3 / volume_per_gaussian_angstrom3(resolution_angstrom))))


def density_voxels(map_data: MapData, threshold: float, resolution_angstrom: float,
                   exclude: np.ndarray | None = None, min_blob_angstrom3: float | None = None):
    """Voxels to seed pseudoatoms on: above ``threshold``, not in ``exclude``, in blobs of at least ``min_blob_angstrom3``.

    Returns:
        ``zyx_index (V, 3)`` int, ``density (V,)`` float64.
    """
    keep = map_data.data > threshold
    if exclude is not None:
        keep &= ~np.asarray(exclude, dtype=bool)
    apix = float(map_data.voxel_size_angstrom)
    min_blob = volume_per_gaussian_angstrom3(resolution_angstrom) if min_blob_angstrom3 is None else min_blob_angstrom3
    min_voxels = int(math.ceil(min_blob / apix**3))
    if min_voxels > 1 and keep.any():
        labels, n = ndimage.label(keep, structure=np.ones((3, 3, 3), dtype=bool))
        sizes = np.bincount(labels.ravel(), minlength=n + 1)
        big = sizes >= min_voxels
        big[0] = False
        keep = big[labels]
    idx = np.argwhere(keep)
    return idx, map_data.data[tuple(idx.T)].astype(np.float64)


def build_from_map(map_data: MapData, resolution_angstrom: float, n_gaussians: int | None = None,
                   threshold: float | None = None, seed: int = 0, exclude: np.ndarray | None = None,
                   map_path=None) -> GMM:
    """Pseudoatom GMM of ``map_data`` (cubic) at resolution ``d``.

    Args:
        n_gaussians: number of pseudoatoms; None estimates it from the volume.
        threshold: density threshold; None uses :func:`default_threshold`.
        exclude: bool ``[z, y, x]`` voxels never seeded (e.g. modelled density).

    Returns:
        GMM in map density units with extra ``origin (N,) int8`` = 1.

    Raises:
        InputError: no voxels above the threshold (outside ``exclude``).
    """
    box, apix, centre = map_frame(map_data, map_path)
    thr = default_threshold(map_data.data) if threshold is None else float(threshold)
    idx, rho = density_voxels(map_data, thr, resolution_angstrom, exclude)
    if len(idx) == 0:
        where = "" if exclude is None else " outside the modelled region"
        raise InputError(map_path, f"no voxels above threshold {thr:.4g}{where} (map range "
                                   f"{float(map_data.data.min()):.4g} to {float(map_data.data.max()):.4g})")
    if n_gaussians is None:
        n_gaussians = estimate_n_gaussians(len(idx) * apix**3, resolution_angstrom)
    n = int(n_gaussians)
    if not 1 <= n <= len(idx):
        raise ConfigError(f"{n} pseudoatoms requested but only {len(idx)} voxels lie above threshold {thr:.4g}")
    xyz = box_frame_xyz(box, apix, idx)
    centres, amp, sig = seed_pseudoatoms(xyz, rho, n, sigma_for_resolution(resolution_angstrom), apix, seed)
    extras = {"origin": np.ones(len(centres), dtype=np.int8)}
    return GMM.from_arrays(centres, amp, sig, box, apix, box_centre_world_angstrom=centre, extras=extras)


def seed_pseudoatoms(xyz: np.ndarray, density: np.ndarray, n: int, sigma0: float, pixel_size_angstrom: float,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Density-weighted k-means of voxel positions ``(V, 3)`` into ``n`` Gaussians.

    Returns:
        ``centres (n', 3)``, ``amplitude (n',)`` (map units), ``sigma (n',)`` [Å];
        ``n' ≤ n`` when k-means leaves clusters empty.
    """
    from sklearn.cluster import KMeans

    w = np.clip(np.asarray(density, dtype=np.float64), 1e-12, None)
    km = KMeans(n_clusters=n, n_init=1, max_iter=100, random_state=int(seed)).fit(xyz, sample_weight=w)
    _, label = np.unique(km.labels_, return_inverse=True)
    n = int(label.max()) + 1
    wsum = np.bincount(label, weights=w, minlength=n)
    centres = np.stack([np.bincount(label, weights=w * xyz[:, i], minlength=n) for i in range(3)], 1) / wsum[:, None]
    spread = np.bincount(label, weights=w * ((xyz - centres[label]) ** 2).sum(1), minlength=n) / wsum / 3.0
    sigma = np.maximum(sigma0, np.sqrt(spread))
    mass = wsum * float(pixel_size_angstrom) ** 3
    return centres, mass / (2 * math.pi * sigma**2) ** 1.5, sigma
