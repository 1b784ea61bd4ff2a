"""Per-ring normalised squared error, optionally with a scale fitted per particle."""
from __future__ import annotations

import torch

from .base import LOSSES, Loss


@LOSSES.register("weighted_l2")
class WeightedL2Loss(Loss):
    """``mean_r Σ_r |s·P − O|² / Σ_r |O|²`` per particle ``(B,)`` (rings as in :class:`Loss`).

    Each ring is normalised by the observed power in it, so every ring counts equally
    whatever the spectrum's fall-off (≈ 1 per ring for a prediction unrelated to the
    noise, 0 for a perfect one).

    ``fit_scale=True`` (default): ``s`` is the least-squares scale of each particle,
    ``s = max(0, Σ_r C_r/D_r / Σ_r A_r/D_r)`` with ``A_r = Σ_r |P|²``, ``C_r = Re Σ_r P·conj(O)``,
    ``D_r = Σ_r |O|²`` (differentiable), so the loss ignores the arbitrary intensity scale of the
    particle images, like the FRC, but — unlike it — the relative power of the rings counts.
    ``fit_scale=False``: ``s = 1``, GMM amplitudes must match the image scale.
    """

    def __init__(self, band, exclude_dc: bool = True, fit_scale: bool = True, eps: float = 1e-12):
        super().__init__(band, exclude_dc)
        self.fit_scale = bool(fit_scale)
        self.eps = float(eps)

    def forward(self, predicted: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        A = self.ring_sums(predicted.real**2 + predicted.imag**2)
        C = self.ring_sums((predicted * observed.conj()).real)
        D = self.ring_sums(observed.real**2 + observed.imag**2)
        D = D + self.eps * (D.detach().amax(dim=1, keepdim=True) + self.eps)
        if self.fit_scale:
            a, c = (A / D).sum(1, keepdim=True), (C / D).sum(1, keepdim=True)
            s = (c / (a + self.eps)).clamp_min(0.0)
        else:
            s = torch.ones_like(D[:, :1])
        return ((s**2 * A - 2 * s * C + D) / D).mean(dim=1)
