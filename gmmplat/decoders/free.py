"""Free decoder: an MLP gives every Gaussian of the subset its own offsets."""
from __future__ import annotations

from typing import Sequence

import torch

from ..encoders.base import make_mlp
from ..gmm import GMM
from .base import DECODERS, Decoder


@DECODERS.register("free")
class FreeDecoder(Decoder):
    """``z (B, d)`` -> MLP -> ``(B, S, C)`` offsets of the S subset Gaussians.

    Options:
        hidden, activation: the MLP (last layer zero-initialised: offsets 0 at start).
        columns (:meth:`Decoder.use_columns`): move_position / move_amplitude / move_sigma, which
            columns move (default positions and amplitudes); position_scale_angstrom,
            amplitude_scale (relative to the subset's mean neutral amplitude), sigma_scale_angstrom:
            the offset for one unit of network output (balances learning rates between columns).
    Sigma offsets are not clamped: keep sigma positive with a regularizer or small scale.
    """

    def __init__(self, latent_dim: int, neutral: GMM, subset: torch.Tensor | None = None,
                 hidden: Sequence[int] = (256, 256), activation: str = "relu", **columns):
        super().__init__(latent_dim, neutral, subset)
        C = self.use_columns(**{"move_amplitude": True, **columns})
        self.mlp = make_mlp(latent_dim, len(self.subset_index) * C, hidden, activation, zero_last=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.subset_offsets(self.mlp(z).reshape(z.shape[0], len(self.subset_index), len(self.columns)))
