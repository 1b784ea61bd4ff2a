"""Free decoder: an MLP gives every Gaussian of the subset its own offsets."""
from __future__ import annotations

from typing import Sequence

import torch

from ..encoders.base import make_mlp
from .base import DECODERS, Decoder, column_scales, moving_columns


@DECODERS.register("free")
class FreeDecoder(Decoder):
    """``z (B, d)`` -> MLP -> ``(B, S, C)`` offsets of the S subset Gaussians.

    Options:
        move_position / move_amplitude / move_sigma: which columns move (C of x, y, z,
            amplitude, sigma); default positions and amplitudes.
        hidden, activation: the MLP (last layer zero-initialised: offsets 0 at start).
        position_scale_angstrom, amplitude_scale, sigma_scale_angstrom: the offset for one
            unit of network output (balances learning rates between columns).
    Sigma offsets are not clamped: keep sigma positive with a regularizer or small scale.
    """

    def __init__(
        self,
        latent_dim: int,
        neutral,
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
        self.register_buffer("columns", moving_columns(move_position, move_amplitude, move_sigma))
        self.register_buffer(
            "column_scale",
            column_scales(self.columns, position_scale_angstrom, amplitude_scale, sigma_scale_angstrom)
            * self.neutral_scale(),
        )
        S, C = len(self.subset_index), len(self.columns)
        self.mlp = make_mlp(latent_dim, S * C, hidden, activation, zero_last=True)

    def neutral_scale(self) -> torch.Tensor:
        """Amplitude offsets are relative to the mean neutral amplitude (unit-free network output)."""
        cols = self.columns
        amp = self.neutral_params[self.subset_index, 3].abs().mean().clamp_min(1e-12)
        return torch.where(cols == 3, amp, torch.ones_like(cols, dtype=torch.float32))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        S, C = len(self.subset_index), len(self.columns)
        values = self.mlp(z).reshape(z.shape[0], S, C) * self.column_scale
        return self.scatter(values, self.columns)
