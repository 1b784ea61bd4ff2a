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
        move_position / move_amplitude / move_sigma: which columns move (C of x, y, z,
            amplitude, sigma); default positions and amplitudes.
        hidden, activation: the MLP (last layer zero-initialised: offsets 0 at start).
        position_scale_angstrom, amplitude_scale, sigma_scale_angstrom: the offset for one
            unit of network output (balances learning rates between columns; amplitude relative
            to the subset's mean neutral amplitude, :meth:`Decoder.use_columns`).
    Sigma offsets are not clamped: keep sigma positive with a regularizer or small scale.
    """

    def __init__(
        self,
        latent_dim: int,
        neutral: GMM,
        subset: torch.Tensor | None = None,
        move_position: bool = True,
        move_amplitude: bool = True,
        move_sigma: bool = False,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        position_scale_angstrom: float = 1.0,
        amplitude_scale: float = 0.1,
        sigma_scale_angstrom: float = 0.1,
    ):
        super().__init__(latent_dim, neutral, subset)
        C = self.use_columns(move_position, move_amplitude, move_sigma, position_scale_angstrom, amplitude_scale,
                             sigma_scale_angstrom)
        self.mlp = make_mlp(latent_dim, len(self.subset_index) * C, hidden, activation, zero_last=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.subset_offsets(self.mlp(z).reshape(z.shape[0], len(self.subset_index), len(self.columns)))
