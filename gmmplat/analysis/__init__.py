"""Analysis and interpretation of a trained run (docs/analysis.md).

Every function works on explicit inputs (latent arrays, a ``decode_fn: z (B, d) ->
params (B, N, 5)`` callable, :class:`~gmmplat.model.gmm.GMM` and
:class:`~gmmplat.io.models.AtomModel` objects); only :func:`analyze_run` and the ``analyze``,
``morph``, ``evaluate`` and ``select`` commands load run folders.

* :mod:`.latent`: PCA, trajectories along eigenvectors (1st–99th percentile), k-means.
* :mod:`.maps`: decoded GMM maps; CTF-corrected reconstruction from particles near a latent point.
* :mod:`.morph`: atomic models morphed by the decoded GMM (the model as one more layer).
* :mod:`.rigid_report`: rotation angle and axis of a domain per frame (Kabsch).
* :mod:`.evaluate`: scores against the ground truth of simulated data.
* :mod:`.plots`: PNG figures for the command line.
* :mod:`.pipeline`: :func:`analyze_run`, all of the above for a run folder in one call
  (``gmmplat analyze``), writing :mod:`.frame_outputs` per trajectory frame.
* :mod:`.overview`: :func:`load_runs` (every run of a folder, as a table), :func:`pick_run`.
* :mod:`.oracle`, :mod:`.oracle_report`: the exact-likelihood limit on simulated data
  (``gmmplat evaluate --oracle``), :func:`oracle_comparison`.
* :mod:`.quality`: per-particle fit quality and fitted scale of a run, the junk rule
  (``gmmplat select --quality-above / --exclude-junk``).
* :mod:`.nuisances`: on a realistic simulated dataset, the nuisances as simulated, the junk found
  and the pose errors before and after the run's corrections.
"""
from __future__ import annotations

from .evaluate import (
    check_rows, evaluate_latent, frame_rmsd, knn_r2, load_truth, neighbour_overlap, read_model_frames,
    spearman_best_pc,
)
from .latent import (
    LatentPCA, Trajectories, check_pcs, fit_pca, flatten_latent, kmeans_states, nearest_rows, pc_trajectories,
)
from .maps import (
    decoded_map, decoded_maps, fsc_curve, map_origin_angstrom, reconstruct, reconstruct_near, write_volume,
)
from .morph import (
    ModelMorpher, check_overlap, default_s_angstrom, displacement, per_residue_displacement, write_morphed_models,
)
from .oracle_report import oracle_comparison
from .overview import load_runs, pick_run
from .pipeline import AnalysisResult, analyze_run
from .rigid_report import kabsch, rigid_motion, rigid_motion_from_params, rotation_angle_axis

__all__ = [
    "LatentPCA", "Trajectories", "check_pcs", "fit_pca", "flatten_latent", "kmeans_states", "nearest_rows",
    "pc_trajectories",
    "decoded_map", "decoded_maps", "fsc_curve", "map_origin_angstrom", "reconstruct", "reconstruct_near",
    "write_volume",
    "ModelMorpher", "check_overlap", "default_s_angstrom", "displacement", "per_residue_displacement",
    "write_morphed_models",
    "AnalysisResult", "analyze_run", "load_runs", "pick_run", "oracle_comparison",
    "kabsch", "rigid_motion", "rigid_motion_from_params", "rotation_angle_axis",
    "check_rows", "evaluate_latent", "frame_rmsd", "knn_r2", "load_truth", "neighbour_overlap",
    "read_model_frames", "spearman_best_pc",
]
