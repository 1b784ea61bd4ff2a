"""Fourier ring correlation loss (EMAN2's GMM-DNN loss)."""
from __future__ import annotations

import torch

from .base import LOSSES, Loss


@LOSSES.register("frc")
class FRCLoss(Loss):
    """``1 − mean_r FRC_r`` over the used rings of the band, per particle ``(B,)``.

    ``FRC_r = Re Σ_r P·conj(O) / sqrt(Σ_r |P|² · Σ_r |O|²)`` with the sums over ring r of
    the full Hermitian plane (half-plane cells weighted, :class:`Loss`), so it equals the
    FRC of the real images low-passed to the band.  Invariant to a positive scale of
    either image; 0 for a perfect match, ≈ 1 for unrelated images, 2 at worst.
    A ring where either image has no power counts as FRC 0.
    """

    def __init__(self, band, exclude_dc: bool = True, eps: float = 1e-12):
        super().__init__(band, exclude_dc)
        self.eps = float(eps)

    def ring_frc(self, predicted: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Per-ring FRC ``(B, n_rings)``."""
        cross = self.ring_sums((predicted * observed.conj()).real)
        pp = self.ring_sums(predicted.real**2 + predicted.imag**2)
        oo = self.ring_sums(observed.real**2 + observed.imag**2)
        denom = torch.sqrt(pp * oo)
        tiny = self.eps * (denom.detach().amax(dim=1, keepdim=True) + self.eps)
        return cross / (denom + tiny)

    def forward(self, predicted: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        return 1.0 - self.ring_frc(predicted, observed).mean(dim=1)
