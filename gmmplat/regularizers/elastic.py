"""Elastic-network regularizer: distances between neighbouring Gaussians kept near the neutral GMM's
(or the batch's mean).

The Cα backbone regularizer keeps bond lengths and angles, but a helix that slides along its
own axis by one residue, or turns about it, keeps both while its Gaussians no longer sit on
the same atoms; at the resolution of the images such a slide barely changes the density. An
elastic network (as in normal-mode analysis) also holds the distances to the neighbouring
helices, so among the motions that explain the images equally well the decoder prefers the
locally rigid one.

Pairs: every pair ``(i, j)``, ``i < j``, of Gaussians (of ``subset``, default all) whose
neutral centres are closer than ``cutoff_angstrom``, and of which one is among the other's
``max_neighbours`` nearest (default 32: every pair of a Cα GMM). ``subset`` names masks as a decoder's
does (``"core"``, ``"!domain"``, ``"!A,B"``; :func:`gmmplat.model.masks.subset_mask`), so that pairs
across the border of a rigid body do not hold the body back. Penalty of a GMM ``(B, N, 5)``
(Å², averaged over the batch): ``mean_pairs max(0, ||x_i - x_j| - d_ij| - tolerance)²``.

``tolerance_angstrom`` (default 0: a plain elastic network) makes the well flat-bottomed: a
smooth deformation changes these distances by fractions of an Å, a slide along the chain by one
residue by several Å, so a tolerance of about 1 Å lets the network be stiff against the slide
without holding the deformation back (docs/benchmarks.md, "Elastic network").

``reference`` says whose distances the changes are measured from: ``"neutral"`` the
neutral GMM's, ``"batch"`` (default) their mean over the batch's GMMs (the particles' mean conformation),
so that a change common to every particle costs nothing and only the differences between
particles do.  A neutral GMM refined against the consensus map of a moving structure has the
distances of no conformation where the structure moves (a blurred average), and a network held to
them pulls every decoded conformation toward that average (docs/benchmarks.md, "The network's
reference distances").  A batch of one GMM costs nothing with ``"batch"``; in a
distributed run the mean is over each process's share of the batch.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..model.gmm import GMM, XYZ
from ..model.masks import subset_mask
from .base import REGULARIZERS, Regularizer

DEFAULT_CUTOFF_ANGSTROM = 10.0
DEFAULT_MAX_NEIGHBOURS = 32


def network_pairs(xyz_angstrom: np.ndarray, cutoff_angstrom: float, index: np.ndarray | None = None,
                  max_neighbours: int | None = DEFAULT_MAX_NEIGHBOURS) -> np.ndarray:
    """``(P, 2)`` int64 pairs of Gaussians closer than ``cutoff_angstrom``.

    A pair is kept when either Gaussian is among the other's ``max_neighbours`` nearest (``None``:
    no limit), so that the pairs of a dense GMM (an all-atom build has hundreds of atoms within
    10 Å of each) grow as ``N · max_neighbours``, not ``N²``; a Cα GMM has at most 26–30
    neighbours within 10 Å (the sample datasets) and keeps every pair at the default 32.

    Args:
        xyz_angstrom: ``(N, 3)`` neutral centres (Å).
        cutoff_angstrom: a pair's neutral distance is below it.
        index: ``(S,)`` the Gaussians that may pair (default all ``N``).
        max_neighbours: see above.

    Returns:
        ``(i, j)`` with ``i`` before ``j`` in ``index``, sorted in that order.
    """
    from scipy.spatial import cKDTree

    xyz = np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)
    idx = np.arange(len(xyz)) if index is None else np.asarray(index, dtype=np.int64)
    sub = xyz[idx]
    if len(sub) < 2:
        return np.zeros((0, 2), np.int64)
    tree = cKDTree(sub)
    if max_neighbours is None:
        a, b = tree.query_pairs(cutoff_angstrom, output_type="ndarray").T
        d = np.linalg.norm(sub[a] - sub[b], axis=1)
    else:
        k = min(int(max_neighbours) + 1, len(sub))  # + the point itself
        d, nb = tree.query(sub, k=k, distance_upper_bound=cutoff_angstrom)
        a = np.repeat(np.arange(len(sub)), k)
        b, d = nb.ravel(), d.ravel()
        a, b, d = a[b < len(sub)], b[b < len(sub)], d[b < len(sub)]  # missing neighbours come back as len(sub)
    keep = (a != b) & (d < cutoff_angstrom)
    pos = np.unique(np.sort(np.stack([a[keep], b[keep]], axis=1), axis=1), axis=0).astype(np.int64)
    return idx[pos]


@REGULARIZERS.register("elastic_network")
class ElasticNetworkRegularizer(Regularizer):
    """Mean squared change (Å²) of the distances between Gaussians closer than ``cutoff_angstrom``.

    Options: ``cutoff_angstrom`` (default 10 Å: a helix's neighbours across a bundle),
    ``tolerance_angstrom`` (default 0: changes up to it cost nothing),
    ``max_neighbours`` (default 32; ``None``: every pair within the cutoff),
    ``subset`` (mask names as for a decoder, or ``None`` for all Gaussians),
    ``reference`` (``"batch"``, default, or ``"neutral"``: see the module docstring).
    """

    def __init__(self, neutral: GMM, weight: float = 1.0, cutoff_angstrom: float = DEFAULT_CUTOFF_ANGSTROM,
                 tolerance_angstrom: float = 0.0, max_neighbours: int | None = DEFAULT_MAX_NEIGHBOURS,
                 subset=None, reference: str = "batch", **opts):
        super().__init__(neutral, weight, **opts)
        if reference not in ("neutral", "batch"):
            raise ConfigError(f"elastic_network: reference must be 'neutral' or 'batch', got {reference!r}")
        self.reference = reference
        if not cutoff_angstrom > 0:
            raise ConfigError(f"elastic_network: cutoff_angstrom must be positive, got {cutoff_angstrom}")
        if not tolerance_angstrom >= 0:
            raise ConfigError(f"elastic_network: tolerance_angstrom must be 0 or more, got {tolerance_angstrom}")
        if max_neighbours is not None and not int(max_neighbours) >= 1:
            raise ConfigError(f"elastic_network: max_neighbours must be at least 1 (or null), got {max_neighbours}")
        self.cutoff_angstrom = float(cutoff_angstrom)
        self.tolerance_angstrom = float(tolerance_angstrom)
        self.subset = subset
        mask = subset_mask(neutral, subset, "elastic_network")
        index = None if mask is None else np.nonzero(mask.numpy())[0]
        xyz = neutral.params[:, XYZ].detach().double().cpu().numpy()
        pairs = network_pairs(xyz, self.cutoff_angstrom, index, max_neighbours)
        if not len(pairs):
            where = "" if subset is None else f" in subset {subset!r}"
            raise ConfigError(f"elastic_network: no two Gaussians{where} closer than {self.cutoff_angstrom:g} Å")
        self.register_buffer("pairs", torch.as_tensor(pairs))
        d0 = np.linalg.norm(xyz[pairs[:, 0]] - xyz[pairs[:, 1]], axis=1)
        self.register_buffer("distance0", torch.as_tensor(d0, dtype=torch.float32))

    @property
    def n_pairs(self) -> int:
        return int(self.pairs.shape[0])

    def distance_change(self, params: torch.Tensor) -> torch.Tensor:
        """``(B, P)`` change of each pair's distance (Å) in GMMs ``(B, N, 5)`` or ``(N, 5)``."""
        x = self.as_batch(params)[..., XYZ]
        ends = x.index_select(1, self.pairs[:, 0]) - x.index_select(1, self.pairs[:, 1])  # faster than x[:, i]
        return torch.linalg.vector_norm(ends, dim=-1) - self.distance0

    def penalty(self, params: torch.Tensor) -> torch.Tensor:
        change = self.distance_change(params)
        if self.reference == "batch":  # from the batch's mean distances
            change = change - change.mean(0, keepdim=True)
        if self.tolerance_angstrom > 0:
            change = torch.relu(change.abs() - self.tolerance_angstrom)
        return (change ** 2).mean()

    def extra_repr(self) -> str:
        where = "" if self.subset is None else f", subset={self.subset!r}"
        return (f"pairs={self.n_pairs}, cutoff={self.cutoff_angstrom:g} Å, tolerance={self.tolerance_angstrom:g} Å"
                f"{where}, reference={self.reference}, weight={self.weight:g}")


__all__ = ["ElasticNetworkRegularizer", "network_pairs", "DEFAULT_CUTOFF_ANGSTROM", "DEFAULT_MAX_NEIGHBOURS"]
