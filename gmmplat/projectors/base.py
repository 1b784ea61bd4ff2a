"""Abstract projector: per-particle GMMs -> predicted centred Fourier images on a band."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from ..fourier import Band
from ..gmm import AMPLITUDE, WIDTH, XYZ
from ..registry import Registry

PROJECTORS: Registry = Registry("projector")


class Projector(ABC, torch.nn.Module):
    """Forms the centred rfft of GMM projections, restricted to a :class:`Band`.

    ``forward(params, rotations, shifts_angstrom, ctf=None)``:

    * ``params`` ``(B, N, 5)`` or ``(N, 5)`` (shared): x, y, z [Å], amplitude, sigma [Å]
    * ``rotations`` ``(B, 3, 3)``: RELION matrices A (map point r lands at ``(A r)[:2]``)
    * ``shifts_angstrom`` ``(B, 2)``: rlnOriginX/YAngst (image = projection translated by -origin, as RELION)
    * ``ctf`` ``(B, Ky, Kx)`` on the band grid, or None
    * returns complex64 ``(B, Ky, Kx)`` (``band.band_to_images`` gives real images)
    """

    def __init__(self, band: Band):
        super().__init__()
        self.band = band
        self.register_buffer("kx", band.kx.to(torch.float32), persistent=False)
        self.register_buffer("ky", band.ky.to(torch.float32), persistent=False)

    def set_band(self, band: Band) -> None:
        """Switch to another band (e.g. the next training round's resolution)."""
        self.band = band
        self.kx = band.kx.to(self.kx.device, torch.float32)
        self.ky = band.ky.to(self.ky.device, torch.float32)

    def _prepare(self, params, rotations, shifts_angstrom):
        """Projected centres ``(B, N, 2)`` [Å], weights ``(B, N)``, ``2π²σ²`` ``(B, N)``."""
        if params.ndim == 2:
            params = params.expand(rotations.shape[0], -1, -1)
        params = params.to(torch.float32)
        R = rotations.to(params.dtype)
        centres = torch.einsum("bij,bnj->bni", R[:, :2, :], params[..., XYZ])
        centres = centres - shifts_angstrom.to(params.dtype)[:, None, :]  # RELION: particle at centre - origin
        sigma = params[..., WIDTH]
        apix = float(self.band.pixel_size_angstrom)
        weight = params[..., AMPLITUDE] * (2 * math.pi * sigma**2) ** 1.5 / apix**2
        return centres, weight, (2 * math.pi**2) * sigma**2

    @abstractmethod
    def forward(self, params, rotations, shifts_angstrom, ctf=None) -> torch.Tensor:  # pragma: no cover
        ...
