"""Building neutral GMMs from atomic models and maps (``docs/build.md``).

* :func:`build_from_model`: one Gaussian per selected atom, or k-means centres.
* :func:`build_from_map`: pseudoatoms by density-weighted k-means of voxels.
* :func:`build_combined`: model + pseudoatoms on the unmodelled density.
* :func:`refine_gmm`: fit positions, amplitudes and widths to the map in 3D Fourier space.
* :func:`build_neutral_gmm` (:class:`BuildOptions`): the whole build of ``gmmplat build``.
* :mod:`.hierarchy`: the small GMM and its transition matrix (hierarchical decoder).
"""
from __future__ import annotations

from .combine import build_combined, default_mask_radius, merge, model_mask
from .from_map import (build_from_map, default_threshold, density_centre_world, estimate_n_gaussians, map_frame,
                       sigma_for_resolution)
from .from_model import build_from_model, check_model_overlaps_map, electron_counts
from .hierarchy import add_hierarchy, default_transition_s, propagate, small_gmm_from_map, small_gmm_kmeans, transition_matrix
from .export import write_centres_pdb, write_gmm_map
from .pipeline import BuildOptions, build_neutral_gmm
from .refine import FourierSphere, RefineResult, fit_amplitude_scales, gmm_map_fsc, refine_gmm, scale_to_map

__all__ = [
    "build_from_model", "check_model_overlaps_map", "electron_counts", "map_frame", "sigma_for_resolution",
    "build_from_map", "default_threshold", "density_centre_world", "estimate_n_gaussians",
    "build_combined", "default_mask_radius", "merge", "model_mask",
    "FourierSphere", "RefineResult", "fit_amplitude_scales", "gmm_map_fsc", "refine_gmm", "scale_to_map",
    "write_centres_pdb", "write_gmm_map", "BuildOptions", "build_neutral_gmm",
    "add_hierarchy", "default_transition_s", "propagate", "small_gmm_from_map", "small_gmm_kmeans", "transition_matrix",
]
