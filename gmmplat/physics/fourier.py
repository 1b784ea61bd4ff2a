"""Centred Fourier transforms and band-limited rfft grids.

Images are transformed with the phase origin at the box centre
(``F = rfft2(ifftshift(image))``).  A :class:`Band` selects the rows and
columns of the rfft half-plane that hold frequencies up to a resolution limit,
so projectors and losses never touch the rest of the grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError


def image_to_rfft(images: torch.Tensor) -> torch.Tensor:
    """Real images ``(..., M, M)`` -> centred rfft ``(..., M, M//2+1)`` complex."""
    return torch.fft.rfft2(torch.fft.ifftshift(images, dim=(-2, -1)))


def rfft_to_image(F: torch.Tensor, box: int) -> torch.Tensor:
    """Centred rfft ``(..., M, M//2+1)`` -> real images ``(..., M, M)``."""
    return torch.fft.fftshift(torch.fft.irfft2(F, s=(box, box)), dim=(-2, -1))


@dataclass
class Band:
    """Frequencies of an ``M × M`` image up to ``high_res_angstrom`` on the rfft half-plane.

    Attributes (after construction):
        ky_index (Ky,), kx_index (Kx,): rows / columns of the full rfft grid kept, FFT order.
        ky, kx: their frequencies in 1/Å.
        radius_px (Ky, Kx): |k| in Fourier pixels; ring (Ky, Kx): integer ring index.
        in_band (Ky, Kx): bool, low_res_angstrom ≥ 1/|k| ≥ high_res_angstrom.
    """

    box: int
    pixel_size_angstrom: float
    high_res_angstrom: float | None = None
    low_res_angstrom: float | None = None
    ky_index: torch.Tensor = field(init=False)
    kx_index: torch.Tensor = field(init=False)

    def __post_init__(self):
        M, apix = int(self.box), float(self.pixel_size_angstrom)
        nyquist = 2 * apix
        if self.high_res_angstrom is None:
            self.high_res_angstrom = nyquist
        if self.high_res_angstrom < nyquist * (1 - 1e-6):
            raise ConfigError(
                f"high-resolution limit {self.high_res_angstrom:g} Å is beyond Nyquist "
                f"({nyquist:g} Å at {apix:g} Å/px)"
            )
        if self.low_res_angstrom is not None and self.low_res_angstrom <= self.high_res_angstrom:
            raise ConfigError(
                f"low-resolution limit {self.low_res_angstrom:g} Å must be larger than the "
                f"high-resolution limit {self.high_res_angstrom:g} Å"
            )
        kmax_px = M * apix / self.high_res_angstrom  # radius in Fourier pixels
        r = int(math.floor(kmax_px + 1e-6))
        ky_full = torch.fft.fftfreq(M) * M  # integer Fourier pixel indices
        kx_full = torch.fft.rfftfreq(M) * M
        self.ky_index = torch.nonzero(ky_full.abs() <= r).flatten()
        self.kx_index = torch.nonzero(kx_full <= r).flatten()
        ky_px, kx_px = ky_full[self.ky_index], kx_full[self.kx_index]
        self.ky = ky_px / (M * apix)
        self.kx = kx_px / (M * apix)
        self.radius_px = torch.sqrt(ky_px[:, None] ** 2 + kx_px[None, :] ** 2)
        self.ring = torch.round(self.radius_px).long()
        lo_px = 0.0 if self.low_res_angstrom is None else M * apix / self.low_res_angstrom
        self.in_band = (self.radius_px <= kmax_px + 1e-6) & (self.radius_px >= lo_px - 1e-6)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.ky_index), len(self.kx_index))

    @property
    def is_full(self) -> bool:
        return self.shape == (self.box, self.box // 2 + 1)

    def crop(self, F: torch.Tensor) -> torch.Tensor:
        """Full centred rfft ``(..., M, M//2+1)`` -> band ``(..., Ky, Kx)``."""
        return F.index_select(-2, self.ky_index.to(F.device)).index_select(-1, self.kx_index.to(F.device))

    def uncrop(self, Fb: torch.Tensor) -> torch.Tensor:
        """Band ``(..., Ky, Kx)`` -> full rfft grid ``(..., M, M//2+1)``, zeros outside the band."""
        out = Fb.new_zeros(Fb.shape[:-2] + (self.box, self.box // 2 + 1))
        ky = self.ky_index.to(Fb.device)[:, None]
        kx = self.kx_index.to(Fb.device)[None, :]
        out[..., ky, kx] = Fb
        return out

    def images_to_band(self, images: torch.Tensor) -> torch.Tensor:
        """Real images ``(..., M, M)`` -> their centred transform on the band ``(..., Ky, Kx)``."""
        return self.crop(image_to_rfft(images))

    def band_to_images(self, Fb: torch.Tensor) -> torch.Tensor:
        """Band ``(..., Ky, Kx)`` -> real images ``(..., M, M)`` (low-pass filtered)."""
        return rfft_to_image(self.uncrop(Fb), self.box)


def origin_phase(kx: torch.Tensor, ky: torch.Tensor, shifts_angstrom: torch.Tensor) -> torch.Tensor:
    """``exp(+2πi (kx·ox + ky·oy))`` ``(B, Ky, Kx)`` complex64 for origins ``(B, 2)`` [Å] on the
    frequencies ``kx (Kx,)``, ``ky (Ky,)`` [1/Å].

    RELION's origin: a particle image is its projection translated by ``−origin``, i.e. the
    projection's transform times this factor; its conjugate translates an image by ``+origin``
    (what ``relion_reconstruct`` does before inserting it).  docs/conventions.md.
    """
    s = shifts_angstrom.to(torch.float64)
    phase = 2 * math.pi * (s[:, 0, None, None] * kx.to(torch.float64)[None, None, :]
                           + s[:, 1, None, None] * ky.to(torch.float64)[None, :, None])
    return torch.polar(torch.ones_like(phase), phase).to(torch.complex64)
