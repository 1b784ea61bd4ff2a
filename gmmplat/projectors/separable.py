"""Separable Fourier projector: an x factor (N × Kx) and a y factor (N × Ky) per particle,
multiplied as one batched complex matrix product.  Memory O(B·N·(Kx+Ky))."""
from __future__ import annotations

import math

import torch

from .base import PROJECTORS, Projector


@PROJECTORS.register("separable")
class FourierSeparableProjector(Projector):
    """Default projector.  For Gaussian i with projected centre (px, py):

    ``F(ky, kx) = Σ_i [w_i e^{-2π²σ²kx² - 2πi kx px}] · [e^{-2π²σ²ky² - 2πi ky py}]``,
    i.e. ``Yᵀ (B, Ky, N) @ X (B, N, Kx)``.
    """

    def forward(self, params, rotations, shifts_angstrom, ctf=None):
        centres, weight, s2 = self._prepare(params, rotations, shifts_angstrom)
        two_pi = 2 * math.pi
        X = torch.exp(torch.complex(-s2[..., None] * self.kx**2, -two_pi * centres[..., 0:1] * self.kx))
        X = X * weight[..., None]
        Y = torch.exp(torch.complex(-s2[..., None] * self.ky**2, -two_pi * centres[..., 1:2] * self.ky))
        F = torch.bmm(Y.transpose(1, 2), X)  # (B, Ky, Kx)
        return F if ctf is None else F * ctf
