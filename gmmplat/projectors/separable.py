"""Separable Fourier projector: an x factor (N × Kx) and a y factor (N × Ky) per particle,
multiplied as one batched complex matrix product.  Memory O(B·N·(Kx+Ky))."""
from __future__ import annotations

import math

import torch

from ..physics.fourier import Band
from .base import PROJECTORS, Projector

TWO_PI = 2 * math.pi


def _phases(p: torch.Tensor, m_min: int, count: int, delta: float) -> torch.Tensor:
    """``e^{-2πi (m_min + j) Δ p}`` for j = 0..count-1: ``p (B, N)`` -> ``(B, N, count)`` complex.

    Trigonometry only on ~2√count values per Gaussian: ``m = m_min + a + A·c`` splits the
    phase into a fine table (a < A) times a coarse one (c), multiplied as an outer product.
    """
    A = max(1, math.isqrt(count - 1) + 1)
    C = -(-count // A)
    base = (-TWO_PI * delta) * p[..., None]
    fine = _phasor(base * torch.arange(A, device=p.device, dtype=p.dtype))
    coarse = _phasor(base * (m_min + A * torch.arange(C, device=p.device, dtype=p.dtype)))
    return (coarse[..., :, None] * fine[..., None, :]).reshape(*p.shape, C * A)[..., :count]


def _phasor(angle: torch.Tensor, modulus: torch.Tensor | None = None) -> torch.Tensor:
    """``modulus · e^{i angle}`` (real inputs of one shape; modulus 1 when None) as a complex tensor.

    Cosine and sine written separately and joined: on CPU ``torch.polar`` is slower
    (docs/performance.md, "Factors on a low-resolution band").
    """
    re, im = torch.cos(angle), torch.sin(angle)
    if modulus is not None:
        re.mul_(modulus)
        im.mul_(modulus)
    return torch.complex(re, im)


def _scale(z: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Complex ``z (..., K)`` times real ``r`` broadcastable to it, without promoting ``r`` to complex."""
    return torch.view_as_complex(torch.view_as_real(z) * r[..., None])


#: Up to this many frequencies per axis a factor is formed directly (a cosine and a sine per
#: frequency, times the envelope); above it, the fine x coarse tables of :func:`_phases` times the
#: envelope may be faster (docs/performance.md, "Factors on a low-resolution band").
DIRECT_MAX = 32


def _factor(p: torch.Tensor, s2: torch.Tensor, m_min: int, k: torch.Tensor, delta: float) -> torch.Tensor:
    """``e^{-s2 k² - 2πi k p}`` for ``k = (m_min + j) Δ``, j = 0..len(k)-1: ``p, s2 (B, N)`` -> ``(B, N, K)``."""
    envelope = torch.exp(-s2[..., None] * k**2)
    if k.numel() <= DIRECT_MAX:
        return _phasor(p[..., None] * (-TWO_PI * k), envelope)
    return _scale(_phases(p, m_min, k.numel(), delta), envelope)


class _SeparableProjection(torch.autograd.Function):
    """``F[b] = Yn[b]ᵀ @ (w X0)[b]`` with ``X0[b,n,kx] = e^{-s2 kx² - 2πi kx px}`` and
    ``Yn[b,n,ky] = e^{-s2 ky² - 2πi ky py}`` (ky in ascending order; rows are put back in
    FFT order at the end).

    Inputs are real ``(B, N)``: projected centres ``px, py`` [Å], weights ``w``,
    ``s2 = 2π²σ²`` [Å²].  The backward pass is written out (two batched products,
    then reductions over frequency), so only X0 and Yn are kept.
    """

    @staticmethod
    def forward(ctx, px, py, w, s2, grid):
        kx, ky, mx0, my0, delta, rows = grid
        X0 = _factor(px, s2, mx0, kx, delta)
        Yn = _factor(py, s2, my0, ky, delta)
        ctx.save_for_backward(X0, Yn, w)
        ctx.grid = grid
        F = torch.bmm(Yn.transpose(1, 2), _scale(X0, w[..., None]))  # (B, Ky sorted, Kx)
        return F.index_select(1, rows)

    @staticmethod
    def backward(ctx, G):
        X0, Yn, w = ctx.saved_tensors
        kx, ky, _, _, _, rows = ctx.grid
        Gc = torch.zeros(G.shape[0], Yn.shape[2], G.shape[2], dtype=G.dtype, device=G.device)
        Gc[:, rows] = G.conj()  # conj(G), rows back in ascending ky order
        # For real u entering as X = f(u): du = Re(conj(gX) dX/du), with conj(gX) = Yn @ conj(G).
        PX = torch.bmm(Yn, Gc) * X0  # (B, N, Kx): conj(gX0) * X0 (before the weight)
        PY = _scale(torch.bmm(X0, Gc.transpose(1, 2)), w[..., None]) * Yn  # (B, N, Ky): conj(gYn) * Yn
        rx = torch.view_as_real(PX)  # (..., K, 2): real, imag
        ry = torch.view_as_real(PY)
        d_w = rx[..., 0].sum(-1)
        d_px = (rx[..., 1] @ kx) * (TWO_PI * w)  # dX/dpx = -2πi kx X
        d_py = (ry[..., 1] @ ky) * TWO_PI
        d_s2 = -(rx[..., 0] @ kx**2) * w - ry[..., 0] @ ky**2
        return d_px, d_py, d_w, d_s2, None


@PROJECTORS.register("separable")
class FourierSeparableProjector(Projector):
    """Default projector.  For Gaussian i with projected centre (px, py):

    ``F(ky, kx) = Σ_i [e^{-2π²σ²ky² - 2πi ky py}] · [w_i e^{-2π²σ²kx² - 2πi kx px}]``,
    i.e. ``Y (B, Ky, N) @ X (B, N, Kx)``.
    """

    def set_band(self, band: Band) -> None:
        super().set_band(band)
        self._grid = None

    def _frequency_grid(self):
        if getattr(self, "_grid", None) is None or self._grid[0].device != self.kx.device:
            band = self.band
            delta = 1.0 / (band.box * band.pixel_size_angstrom)
            my = torch.round(self.ky / delta).long()
            my0 = int(my.min())
            ky_sorted = (my0 + torch.arange(len(my), device=self.ky.device)).to(self.ky.dtype) * delta
            self._grid = (self.kx, ky_sorted, 0, my0, delta, (my - my0).to(self.ky.device))
        return self._grid

    def render(self, centres, weight, s2):
        return _SeparableProjection.apply(centres[..., 0], centres[..., 1], weight, s2, self._frequency_grid())
