"""Dense Fourier projector: every Gaussian evaluated on the whole Ky × Kx grid (N·Ky·Kx
values per particle).  The reference for tests and benchmarks, not for training."""
from __future__ import annotations

import math

import torch

from .base import PROJECTORS, Projector


@PROJECTORS.register("dense")
class DenseFourierProjector(Projector):
    def render(self, centres, weight, s2):
        k2 = self.ky[:, None] ** 2 + self.kx[None, :] ** 2  # (Ky, Kx)
        phase = centres[..., 0, None, None] * self.kx + centres[..., 1, None, None] * self.ky[:, None]
        per_gaussian = torch.exp(torch.complex(-s2[..., None, None] * k2, -2 * math.pi * phase))
        return (per_gaussian * weight[..., None, None]).sum(dim=1)  # (B, Ky, Kx)
