"""Free decoder: an MLP gives every Gaussian of the subset its own offsets.

With ``coarse_angstrom`` the MLP has a second output of the same size, smoothed over the neutral
GMM before it is added: ``offsets = fine + K · coarse``, ``K (S, S)`` the Gaussian kernel of that
width between the neutral centres of the subset (cut at 3 widths and to the nearest 128, rows
summing to 1).  The decoder can represent what it could without (``fine`` alone), but a gradient
step now moves whole neighbourhoods together, so a smooth motion grows at the pace of its
neighbourhood's signal instead of each Gaussian's, and the largest displacements come out
closer to their full size (docs/benchmarks.md, "Elastic network").

``fine_scale`` multiplies the unsmoothed output: ``offsets = fine_scale · fine + K · coarse``.
The function class stays the same, but with Adam, whose steps have about the same size in every
output, a Gaussian now moves apart from its neighbourhood ``fine_scale`` times as fast as the
neighbourhood moves.  A noisy latent blurs neighbouring states together and makes each Gaussian's
own target noisy, and the unsmoothed output is where that noise lands; a smaller scale damps
it, too small smooths the motion (docs/benchmarks.md, "The unsmoothed output's scale").
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..errors import ConfigError
from ..model.gmm import GMM, XYZ
from ..model.nets import make_mlp
from .base import DECODERS, Decoder

#: The kernel is cut where it falls below exp(-4.5) (3 widths) ...
KERNEL_CUT_WIDTHS = 3.0
#: ... and to each Gaussian's nearest 128 (itself included), so that it grows as 128 N, not with
#: the density: a Cα GMM has 60–105 Gaussians within 18 Å (the sample datasets, kept whole), an
#: all-atom one thousands.
KERNEL_MAX_NEIGHBOURS = 128


def smoothing_kernel(xyz_angstrom: np.ndarray, width_angstrom: float,
                     max_neighbours: int = KERNEL_MAX_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Row-normalised Gaussian kernel between centres ``(S, 3)``, cut at 3 widths and to each
    centre's ``max_neighbours`` nearest (itself included), as sparse entries.

    Returns ``index (2, P)`` int64 (row, column; sorted) and ``weight (P,)`` float32, rows summing
    to 1 (every row holds at least its diagonal).
    """
    from scipy.spatial import cKDTree

    xyz = np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)
    n = len(xyz)
    k = min(int(max_neighbours), n)
    dist, nb = cKDTree(xyz).query(xyz, k=k, distance_upper_bound=KERNEL_CUT_WIDTHS * width_angstrom)
    dist, nb = dist.reshape(n, k), nb.reshape(n, k)
    keep = nb < n  # missing neighbours come back as n
    rows = np.repeat(np.arange(n), k)[keep.ravel()]
    cols, d = nb[keep], dist[keep]
    w = np.exp(-d ** 2 / (2.0 * width_angstrom ** 2))
    w /= np.bincount(rows, weights=w, minlength=n)[rows]
    order = np.lexsort((cols, rows))
    return np.stack([rows[order], cols[order]]).astype(np.int64), w[order].astype(np.float32)


@DECODERS.register("free")
class FreeDecoder(Decoder):
    """``z (B, d)`` -> MLP -> ``(B, S, C)`` offsets of the S subset Gaussians.

    Options:
        hidden, activation: the MLP (last layer zero-initialised: offsets 0 at start).
        columns (:meth:`Decoder.use_columns`): move_position / move_amplitude / move_sigma, which
            columns move (default positions only: with amplitudes free a motion is explained by
            density taken away at one end and added at the other; docs/training.md); position_scale_angstrom,
            amplitude_scale (relative to the subset's mean neutral amplitude), sigma_scale_angstrom:
            the offset for one unit of network output (balances learning rates between columns).
        coarse_angstrom: width (Å) of the kernel of the smoothed second output (module
            docstring); None (default): none.
        fine_scale: factor on the unsmoothed output when there is a smoothed one (default 1):
            below 1 the Gaussians move apart from their neighbourhood more slowly (module docstring).
    Sigma offsets are not clamped: keep sigma positive with a regularizer or small scale.
    """

    def __init__(self, latent_dim: int, neutral: GMM, subset: torch.Tensor | None = None,
                 hidden: Sequence[int] = (256, 256), activation: str = "relu",
                 coarse_angstrom: float | None = None, fine_scale: float = 1.0, **columns):
        super().__init__(latent_dim, neutral, subset)
        C = self.use_columns(**{"move_amplitude": False, **columns})
        S = len(self.subset_index)
        self.coarse_angstrom = None if coarse_angstrom is None else float(coarse_angstrom)
        self.fine_scale = float(fine_scale)
        if not (math.isfinite(self.fine_scale) and self.fine_scale >= 0):
            raise ConfigError(f"free decoder: fine_scale must be a number ≥ 0, got {fine_scale}")
        if self.fine_scale != 1.0 and self.coarse_angstrom is None:
            raise ConfigError("free decoder: fine_scale weighs the unsmoothed output against the smoothed one; "
                              "it needs coarse_angstrom")
        if self.coarse_angstrom is not None:
            if not self.coarse_angstrom > 0:
                raise ConfigError(f"free decoder: coarse_angstrom must be positive (or null), got {coarse_angstrom}")
            index, weight = smoothing_kernel(self.neutral_params[self.subset_index][:, XYZ].double().numpy(),
                                             self.coarse_angstrom)
            # derived from the neutral GMM: rebuilt with the decoder, not saved
            self.register_buffer("kernel_index", torch.as_tensor(index), persistent=False)
            self.register_buffer("kernel_weight", torch.as_tensor(weight), persistent=False)
        self.mlp = make_mlp(latent_dim, S * C * (1 if self.coarse_angstrom is None else 2), hidden, activation,
                            zero_last=True)

    def smooth(self, values: torch.Tensor) -> torch.Tensor:
        """``K · values`` for ``values (B, S, C)`` (the kernel of ``coarse_angstrom``)."""
        B, S, C = values.shape
        kernel = torch.sparse_coo_tensor(self.kernel_index, self.kernel_weight.to(values.dtype), (S, S),
                                         is_coalesced=True, check_invariants=False)
        flat = values.permute(1, 0, 2).reshape(S, B * C)
        return torch.sparse.mm(kernel, flat).reshape(S, B, C).permute(1, 0, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        S, C = len(self.subset_index), len(self.columns)
        raw = self.mlp(z)
        if self.coarse_angstrom is None:
            return self.subset_offsets(raw.reshape(z.shape[0], S, C))
        raw = raw.reshape(z.shape[0], 2, S, C)
        return self.subset_offsets(raw[:, 0] * self.fine_scale + self.smooth(raw[:, 1]))
