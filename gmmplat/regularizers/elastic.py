"""Elastic-network regularizer: distances between neighbouring Gaussians kept near the neutral GMM's.

The Cα backbone regularizer keeps bond lengths and angles, but a helix that slides along its
own axis by one residue, or turns about it, keeps both while its Gaussians no longer sit on
the same atoms; at the resolution of the images such a slide barely changes the density. An
elastic network (as in normal-mode analysis) also holds the distances to the neighbouring
helices, so among the motions that explain the images equally well the decoder prefers the
locally rigid one.

Pairs: every pair ``(i, j)``, ``i < j``, of Gaussians (of ``subset``, default all) whose
neutral centres are closer than ``cutoff_angstrom``. ``subset`` names masks as a decoder's
does (``"core"``, ``"!domain"``, ``"!A,B"``; :func:`gmmplat.masks.subset_mask`), so that pairs
across the border of a rigid body do not hold the body back. Penalty of a GMM ``(B, N, 5)``
(Å², averaged over the batch): ``mean_pairs max(0, ||x_i - x_j| - d_ij| - tolerance)²``.

``tolerance_angstrom`` (default 0: a plain elastic network) makes the well flat-bottomed: a
smooth deformation changes these distances by fractions of an Å (a 60° bend of a helix
bundle: median 0.2 Å, 90th percentile 0.9 Å), a slide along the chain by one residue by several
Å (every Cα of that bundle onto the next one's place: 90th percentile 4.7 Å), so a tolerance of about 1 Å lets the network be stiff against the slide
without holding the deformation back.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..gmm import GMM, XYZ
from ..masks import subset_mask
from .base import REGULARIZERS, Regularizer

DEFAULT_CUTOFF_ANGSTROM = 10.0


def network_pairs(xyz_angstrom: np.ndarray, cutoff_angstrom: float, index: np.ndarray | None = None) -> np.ndarray:
    """``(P, 2)`` int64 pairs ``i < j`` of Gaussians closer than ``cutoff_angstrom``.

    Args:
        xyz_angstrom: ``(N, 3)`` neutral centres (Å).
        cutoff_angstrom: largest neutral distance of a pair.
        index: ``(S,)`` the Gaussians that may pair (default all ``N``).
    """
    xyz = np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)
    idx = np.arange(len(xyz)) if index is None else np.asarray(index, dtype=np.int64)
    sub = xyz[idx]
    d = np.linalg.norm(sub[:, None] - sub[None], axis=-1)
    a, b = np.nonzero(np.triu(d < cutoff_angstrom, k=1))
    return np.stack([idx[a], idx[b]], axis=1).astype(np.int64) if len(a) else np.zeros((0, 2), np.int64)


@REGULARIZERS.register("elastic_network")
class ElasticNetworkRegularizer(Regularizer):
    """Mean squared change (Å²) of the distances between Gaussians closer than ``cutoff_angstrom``.

    Options: ``cutoff_angstrom`` (default 10 Å: a helix's neighbours across a bundle),
    ``tolerance_angstrom`` (default 0: changes up to it cost nothing),
    ``subset`` (mask names as for a decoder, or ``None`` for all Gaussians).
    """

    def __init__(self, neutral: GMM, weight: float = 1.0, cutoff_angstrom: float = DEFAULT_CUTOFF_ANGSTROM,
                 tolerance_angstrom: float = 0.0, subset=None, **opts):
        super().__init__(neutral, weight, **opts)
        if not cutoff_angstrom > 0:
            raise ConfigError(f"elastic_network: cutoff_angstrom must be positive, got {cutoff_angstrom}")
        if not tolerance_angstrom >= 0:
            raise ConfigError(f"elastic_network: tolerance_angstrom must be 0 or more, got {tolerance_angstrom}")
        self.cutoff_angstrom = float(cutoff_angstrom)
        self.tolerance_angstrom = float(tolerance_angstrom)
        self.subset = subset
        mask = subset_mask(neutral, subset, "elastic_network")
        index = None if mask is None else np.nonzero(mask.numpy())[0]
        xyz = neutral.params[:, XYZ].detach().double().cpu().numpy()
        pairs = network_pairs(xyz, self.cutoff_angstrom, index)
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
        if self.tolerance_angstrom > 0:
            change = torch.relu(change.abs() - self.tolerance_angstrom)
        return (change ** 2).mean()

    def extra_repr(self) -> str:
        where = "" if self.subset is None else f", subset={self.subset!r}"
        return (f"pairs={self.n_pairs}, cutoff={self.cutoff_angstrom:g} Å, tolerance={self.tolerance_angstrom:g} Å"
                f"{where}, weight={self.weight:g}")


__all__ = ["ElasticNetworkRegularizer", "network_pairs", "DEFAULT_CUTOFF_ANGSTROM"]
