"""Combined GMM: atoms of the model plus pseudoatoms on the density the model does not explain.

The density around the modelled atoms is removed from the map by a model mask
(every voxel within ``mask_radius_angstrom`` of any atom of the model file,
whichever atoms the selection turns into Gaussians). What remains above the
threshold is opened (eroded then dilated) with a ball of radius ``d/3``, which
removes the thin shell of blurred modelled density just outside the mask but
keeps anything thicker (a helix, a lipid belt); pseudoatoms are seeded
(:func:`gmmplat.neutral.from_map.build_from_map`) on the rest. Both sets are merged, model Gaussians first (so ``atom_to_gaussian``
and the Cα graph keep their indices), flagged by the extra ``origin``
(0 model, 1 pseudoatom), and their amplitudes put in the map's units with one
least-squares factor per origin.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from ..errors import InputError
from ..io.models import AtomModel
from ..io.mrc import MapData
from ..model.gmm import GMM
from .from_map import build_from_map, default_threshold, map_frame
from .from_model import build_from_model
from .refine import scale_to_map


def default_opening_radius(resolution_angstrom: float) -> float:
    """Radius (Å) of the ball that opens the unmodelled region: ``d / 3``."""
    return float(resolution_angstrom) / 3.0


def open_region(region: np.ndarray, radius_angstrom: float, pixel_size_angstrom: float) -> np.ndarray:
    """Binary opening of a bool ``[z, y, x]`` region by a ball (no-op below one voxel)."""
    r = float(radius_angstrom) / float(pixel_size_angstrom)
    if r < 1.0:
        return region
    n = int(np.floor(r))
    g = np.indices((2 * n + 1,) * 3) - n
    return ndimage.binary_opening(region, structure=(g**2).sum(0) <= r * r + 1e-9)


def default_mask_radius(resolution_angstrom: float) -> float:
    """Model mask radius (Å): ``max(3, d / 2)``, a heavy atom's reach plus half the blur."""
    return max(3.0, 0.5 * float(resolution_angstrom))


def model_mask(map_data: MapData, xyz_world_angstrom: np.ndarray, radius_angstrom: float) -> np.ndarray:
    """Bool ``[z, y, x]``: voxels whose centre is within ``radius_angstrom`` of an atom (world coordinates)."""
    box, apix, _ = map_frame(map_data)
    grid = np.indices((box, box, box)).reshape(3, -1).T  # z, y, x indices
    world = grid[:, ::-1] * apix + np.asarray(map_data.origin_angstrom)
    dist, _ = cKDTree(np.asarray(xyz_world_angstrom, dtype=np.float64)).query(
        world, k=1, distance_upper_bound=float(radius_angstrom))
    return np.isfinite(dist).reshape(box, box, box)


def all_atom_xyz(model: AtomModel) -> np.ndarray:
    """World coordinates ``(n_atoms_total, 3)`` of every atom of the model file (not only the selected ones)."""
    return np.array([a.pos.tolist() for ch in model.structure[0] for r in ch for a in r], dtype=np.float64).reshape(-1, 3)


def merge(model_gmm: GMM, pseudo_gmm: GMM) -> GMM:
    """Concatenate two GMMs of one box: model first; ``origin`` 0/1; per-Gaussian extras of the model padded."""
    if model_gmm.box != pseudo_gmm.box or abs(model_gmm.pixel_size_angstrom - pseudo_gmm.pixel_size_angstrom) > 1e-6:
        raise ValueError("merge needs two GMMs of the same box and pixel size")
    n_m, n_p = model_gmm.n, pseudo_gmm.n
    extras = {}
    for k, v in model_gmm.extras.items():
        v = np.asarray(v)
        if k.startswith("mask__") and v.shape == (n_m,):
            extras[k] = np.concatenate([v, np.zeros(n_p, dtype=v.dtype)])
        elif k != "origin":
            extras[k] = v
    extras["origin"] = np.concatenate([np.zeros(n_m, np.int8), np.ones(n_p, np.int8)])
    params = torch.cat([model_gmm.params, pseudo_gmm.params], dim=0)
    return GMM(params, model_gmm.box, model_gmm.pixel_size_angstrom, model_gmm.box_centre_world_angstrom, extras)


def build_combined(model: AtomModel, map_data: MapData, resolution_angstrom: float,
                   n_model: int | None = None, n_pseudo: int | None = None, threshold: float | None = None,
                   mask_radius_angstrom: float | None = None, seed: int = 0, map_path=None,
                   allow_no_pseudo: bool = True, opening_angstrom: float | None = None) -> GMM:
    """Model GMM + pseudoatoms on the unmodelled density, amplitudes in map units.

    Args:
        model: selected atoms (the mask uses these atoms).
        n_model: k-means centres for the model part (None: one per atom).
        n_pseudo: pseudoatoms (None: estimated from the remaining volume).
        mask_radius_angstrom: None for :func:`default_mask_radius`.
        opening_angstrom: None for :func:`default_opening_radius`; 0 keeps the region as it is.
        allow_no_pseudo: when nothing is left above the threshold, return the
            model alone (True) or raise :class:`InputError` (False).
    """
    thr = default_threshold(map_data.data) if threshold is None else float(threshold)
    radius = default_mask_radius(resolution_angstrom) if mask_radius_angstrom is None else float(mask_radius_angstrom)
    model_gmm = build_from_model(model, map_data, resolution_angstrom, n_model, seed, map_path)
    covered = model_mask(map_data, all_atom_xyz(model), radius)
    opening = default_opening_radius(resolution_angstrom) if opening_angstrom is None else float(opening_angstrom)
    remaining = open_region((map_data.data > thr) & ~covered, opening, map_data.voxel_size_angstrom)
    try:
        pseudo = build_from_map(map_data, resolution_angstrom, n_pseudo, thr, seed, exclude=~remaining,
                                map_path=map_path)
    except InputError:
        if not allow_no_pseudo:
            raise
        return scale_to_map(model_gmm, map_data, resolution_angstrom)[0]
    return scale_to_map(merge(model_gmm, pseudo), map_data, resolution_angstrom)[0]


__all__ = ["build_combined", "merge", "model_mask", "default_mask_radius", "default_opening_radius", "open_region",
           "all_atom_xyz"]
