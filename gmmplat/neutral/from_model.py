"""Neutral GMM from an atomic model fitted into the consensus map.

* One Gaussian per selected atom, or ``n_gaussians`` centres from k-means of
  the atoms (weighted by electron count); ``atom_to_gaussian`` records which
  Gaussian each atom went into.
* Frame: GMM xyz = model world coordinates − world position of the map's box
  centre (``origin + (M//2)·voxel`` from the MRC header); the GMM stores that
  centre, so ``gmm.world_xyz_angstrom()`` gives the model coordinates back.
* Amplitude: electron count of the atom (C 6, N 7, O 8, S 16, … = atomic
  number), so amplitudes are relative scattering strengths; a k-means centre
  carries the summed count of its atoms as integrated mass (see ``docs/build.md``).
* Width: ``σ = d / (π √2) ≈ 0.225 d`` for a target resolution ``d`` (Å): the
  Gaussian's transform ``exp(-2π²σ²k²)`` falls to ``1/e`` at ``k = 1/d``
  (ChimeraX ``molmap``'s default).
"""
from __future__ import annotations


import gemmi
import numpy as np
from scipy import ndimage

from ..errors import ConfigError, InputError
from ..io.models import AtomModel
from ..io.mrc import MapData
from ..model.gmm import GMM
from ..regularizers.backbone import ca_graph_from_model
from .from_map import default_threshold, density_centre_world, map_frame, sigma_for_resolution

MIN_OVERLAP_FRACTION = 0.5


def electron_counts(elements) -> np.ndarray:
    """Electrons per atom (atomic number; unknown elements count as carbon, 6). ``(N,)`` float64."""
    out = []
    for el in np.asarray(elements).tolist():
        z = gemmi.Element(str(el)).atomic_number if str(el).strip() else 0
        out.append(z if z > 0 else 6)
    return np.asarray(out, dtype=np.float64)


def check_model_overlaps_map(model: AtomModel, map_data: MapData, resolution_angstrom: float,
                             threshold: float | None = None, map_path=None) -> float:
    """Raise :class:`InputError` unless the model sits in the map's density.

    An atom counts as overlapping when it lies inside the box within ``d / 2``
    of a voxel above ``threshold`` (:func:`default_threshold` when None). At
    least half the atoms must overlap. The error reports the offset between the
    model centroid and the centre of the density above the threshold.

    Returns:
        The fraction of overlapping atoms.
    """
    box, apix, _ = map_frame(map_data, map_path)
    thr = default_threshold(map_data.data) if threshold is None else float(threshold)
    above = map_data.data > thr
    ijk = np.rint((model.xyz_angstrom - map_data.origin_angstrom) / apix).astype(np.int64)  # x, y, z indices
    inside = np.all((ijk >= 0) & (ijk < box), axis=1)
    fraction = 0.0
    if above.any() and inside.any():
        dist_px = ndimage.distance_transform_edt(~above)
        i, j, k = ijk[inside].T
        near = dist_px[k, j, i] * apix <= 0.5 * resolution_angstrom
        fraction = float(near.sum()) / len(model)
    if fraction < MIN_OVERLAP_FRACTION:
        centroid = model.xyz_angstrom.mean(axis=0)
        if above.any():
            offset = centroid - density_centre_world(map_data, thr)
            where = f"its centroid is {np.linalg.norm(offset):.1f} Å from the map's density centre " \
                    f"(offset x, y, z = {offset[0]:.1f}, {offset[1]:.1f}, {offset[2]:.1f} Å)"
        else:
            where = "the map has no voxels above the threshold"
        raise InputError(
            model.path or None,
            f"model does not overlap the map{'' if map_path is None else ' ' + str(map_path)}: "
            f"{100 * fraction:.0f}% of {len(model)} atoms lie in density above {thr:.4g}; {where}; "
            "fit the model into the map first",
        )
    return fraction


def build_from_model(model: AtomModel, map_data: MapData, resolution_angstrom: float,
                     n_gaussians: int | None = None, seed: int = 0, map_path=None) -> GMM:
    """GMM of the selected atoms of ``model`` in the frame of ``map_data``.

    Args:
        model: atoms already selected (``gmmplat.io.models.read_model(path, selection=...)``).
        map_data: the consensus map the model is fitted into (cubic).
        resolution_angstrom: target resolution ``d``; σ = d/(π√2).
        n_gaussians: None for one Gaussian per atom, else k-means centres.
        seed: k-means seed.

    Returns:
        GMM with extras ``origin (N,) int8`` (all 0), ``atom_to_gaussian``
        ``(n_atoms_total,) int64`` (-1 for atoms not selected) and, when
        Gaussians are single Cα atoms, the Cα graph (``bonds`` …).
        Amplitudes are electron counts (scale to the map with
        :func:`gmmplat.neutral.refine.scale_to_map`).
    """
    box, apix, centre = map_frame(map_data, map_path)
    sigma0 = sigma_for_resolution(resolution_angstrom)
    xyz = model.xyz_angstrom - centre
    electrons = electron_counts(model.element)
    n_atoms = len(model)
    if n_gaussians is None or int(n_gaussians) == n_atoms:
        label = np.arange(n_atoms)
        centres, amp, sig = xyz, electrons, np.full(n_atoms, sigma0)
    else:
        n = int(n_gaussians)
        if not 1 <= n <= n_atoms:
            raise ConfigError(f"--n-gaussians {n} must be between 1 and the {n_atoms} selected atoms")
        centres, amp, sig, label = kmeans_atoms(xyz, electrons, n, sigma0, seed)
    a2g = np.full(model.n_atoms_total, -1, dtype=np.int64)
    a2g[model.atom_index] = label
    extras = {"origin": np.zeros(len(centres), dtype=np.int8), "atom_to_gaussian": a2g}
    gmm = GMM.from_arrays(centres, amp, sig, box, apix, box_centre_world_angstrom=centre, extras=extras)
    graph = ca_graph_from_model(gmm, model)
    if len(graph["bonds"]):
        gmm.extras.update(graph)
    return gmm


def kmeans_atoms(xyz: np.ndarray, electrons: np.ndarray, n: int, sigma0: float, seed: int):
    """Electron-weighted k-means of atoms into ``n`` Gaussians.

    A centre's integrated mass is the summed electron count of its atoms
    times the mass of one atom Gaussian, ``(2πσ0²)^{3/2}``; its width adds the
    atoms' spread to the resolution width, ``σ² = σ0² + ⟨|r - c|²⟩ / 3``, and
    the amplitude follows: ``a = Σ e · (σ0 / σ)³``.

    Returns:
        ``centres (n, 3)``, ``amplitude (n,)``, ``sigma (n,)``, ``label (n_atoms,)``.
    """
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n, n_init=1, random_state=int(seed)).fit(xyz, sample_weight=electrons)
    _, label = np.unique(km.labels_, return_inverse=True)  # drops empty clusters (duplicate atoms)
    label = label.astype(np.int64)
    n = int(label.max()) + 1
    mass = np.bincount(label, weights=electrons, minlength=n)
    centres = np.stack([np.bincount(label, weights=electrons * xyz[:, i], minlength=n) for i in range(3)], 1)
    centres /= mass[:, None]
    spread = np.bincount(label, weights=electrons * ((xyz - centres[label]) ** 2).sum(1), minlength=n) / mass
    sigma = np.sqrt(sigma0**2 + spread / 3.0)
    return centres, mass * (sigma0 / sigma) ** 3, sigma, label
