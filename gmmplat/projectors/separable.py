"""Separable Fourier projector: an x factor (N × Kx) and a y factor (Ky × N) per particle,
multiplied as one batched complex matrix product.  Memory O(B·N·(Kx+Ky))."""
from __future__ import annotations

import math

import torch

from .base import PROJECTORS, Projector

TWO_PI = 2 * math.pi


class _SeparableProjection(torch.autograd.Function):
    """``F[b] = Y[b] @ X[b]`` with ``X[b,n,kx] = w e^{-s2 kx² - 2πi kx px}``,
    ``Y[b,ky,n] = e^{-s2 ky² - 2πi ky py}``.

    Inputs are real ``(B, N)``: projected centres ``px, py`` [Å], weights ``w``,
    ``s2 = 2π²σ²`` [Å²]; ``kx (Kx,)``, ``ky (Ky,)`` [1/Å].  The backward pass is
    written out: two batched products for the factor gradients, then reductions
    over frequency, so only X and Y are kept (no per-element autograd graph).
    """

    @staticmethod
    def forward(ctx, px, py, w, s2, kx, ky):
        X0 = torch.polar(torch.exp(-s2[..., None] * kx**2), (-TWO_PI) * px[..., None] * kx)
        Y = torch.polar(torch.exp(-s2[:, None, :] * ky[:, None] ** 2), (-TWO_PI) * ky[:, None] * py[:, None, :])
        ctx.save_for_backward(X0, Y, w, kx, ky)
        return torch.bmm(Y, X0 * w[..., None])

    @staticmethod
    def backward(ctx, G):
        X0, Y, w, kx, ky = ctx.saved_tensors
        # complex grads (PyTorch convention) of the factors, then the chain rule to real inputs:
        # for real u entering as X = f(u), du = Re(conj(gX) * dX/du).
        gX = torch.bmm(Y.conj().transpose(1, 2), G)  # (B, N, Kx), w.r.t. X = w X0
        gY = torch.bmm(G, (X0 * w[..., None]).conj().transpose(1, 2))  # (B, Ky, N)
        PX = gX.conj() * X0  # (B, N, Kx); multiply by w for terms of X itself
        PY = gY.conj() * Y  # (B, Ky, N)
        d_w = PX.real.sum(-1)
        d_px = (PX.imag @ kx) * (TWO_PI * w)  # dX/dpx = -2πi kx X
        d_py = torch.einsum("bkn,k->bn", PY.imag, ky) * TWO_PI
        d_s2 = -(PX.real @ kx**2) * w - torch.einsum("bkn,k->bn", PY.real, ky**2)
        return d_px, d_py, d_w, d_s2, None, None


@PROJECTORS.register("separable")
class FourierSeparableProjector(Projector):
    """Default projector.  For Gaussian i with projected centre (px, py):

    ``F(ky, kx) = Σ_i [e^{-2π²σ²ky² - 2πi ky py}] · [w_i e^{-2π²σ²kx² - 2πi kx px}]``,
    i.e. ``Y (B, Ky, N) @ X (B, N, Kx)``.
    """

    def forward(self, params, rotations, shifts_angstrom, ctf=None):
        centres, weight, s2 = self._prepare(params, rotations, shifts_angstrom)
        F = _SeparableProjection.apply(centres[..., 0], centres[..., 1], weight, s2, self.kx, self.ky)
        return F if ctf is None else F * ctf
