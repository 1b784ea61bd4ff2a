"""Abstract loss: predicted vs observed centred Fourier images on a band -> one number per particle.

``LOSSES.build(name, band, **opts)``; ``forward(predicted (B, Ky, Kx) complex,
observed (B, Ky, Kx) complex) -> (B,)``, lower is better.  The CTF is already in
``predicted``; particles are not phase-flipped.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from ..errors import ConfigError
from ..physics.fourier import Band
from ..registry import Registry

LOSSES: Registry = Registry("loss")


class RingSums(nn.Module):
    """Ring bookkeeping on a band: the losses, the latent refinement and the data check use it.

    Buffers (rebuilt by :meth:`set_band`):
        ``ring_of_cell (Ky, Kx)`` long: ring index of each cell, ``-1`` outside the used rings;
        ``cell_weight (Ky, Kx)``: how many cells of the full (Hermitian) ``M × M`` plane the
        half-plane cell stands for (2, or 1 on the kx = 0 and Nyquist columns), 0 outside
        the band (sums weighted by it are sums over the whole plane: Parseval); ``n_rings``;
        ``rings (n_rings,)`` long: the used rings' radii in Fourier pixels.
    Used cells are ``band.in_band``, minus the DC cell when ``exclude_dc`` (default True:
    the image mean depends on background normalisation, not on the structure).
    """

    def __init__(self, band: Band, exclude_dc: bool = True):
        super().__init__()
        self.exclude_dc = bool(exclude_dc)
        self.register_buffer("ring_of_cell", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("cell_weight", torch.zeros(0), persistent=False)
        self.set_band(band)

    def set_band(self, band: Band) -> None:
        """Switch to another band (e.g. the next training round's resolution)."""
        self.band = band
        device = self.cell_weight.device
        used = band.in_band.clone()
        if self.exclude_dc:
            used &= band.radius_px > 0
        kx_px = band.kx_index.to(torch.float32)
        halfplane = torch.where((kx_px == 0) | (2 * kx_px == band.box), 1.0, 2.0)
        weight = halfplane[None, :].expand(band.shape) * used
        rings = torch.unique(band.ring[used])
        if len(rings) == 0:
            raise ConfigError(
                f"the loss band (resolution limit {band.high_res_angstrom:g} Å, low-resolution limit "
                f"{band.low_res_angstrom}) holds no frequency but the image mean"
            )
        lookup = torch.full((int(band.ring.max()) + 1,), -1, dtype=torch.long)
        lookup[rings] = torch.arange(len(rings))
        self.ring_of_cell = torch.where(used, lookup[band.ring], torch.full_like(band.ring, -1)).to(device)
        self.cell_weight = weight.to(device, torch.float32)
        self.n_rings = int(len(rings))
        self.rings = rings

    def ring_sums(self, values: torch.Tensor) -> torch.Tensor:
        """Weighted sums over each used ring: ``(B, Ky, Kx)`` real -> ``(B, n_rings)``."""
        B = values.shape[0]
        idx = self.ring_of_cell.clamp_min(0).flatten()
        v = (values * self.cell_weight).reshape(B, -1)
        out = v.new_zeros(B, self.n_rings)
        return out.index_add(1, idx, v * (self.ring_of_cell.flatten() >= 0))


class Loss(RingSums, ABC):
    """A loss on a band, with the ring bookkeeping of :class:`RingSums`."""

    @abstractmethod
    def forward(self, predicted: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        ...
