"""Abstract projector: per-particle GMMs -> predicted centred Fourier images on a band."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from ..model.gmm import AMPLITUDE, WIDTH, XYZ
from ..physics.fourier import Band
from ..registry import Registry

PROJECTORS: Registry = Registry("projector")


class Projector(ABC, torch.nn.Module):
    """Forms the centred rfft of GMM projections, restricted to a :class:`Band`; nothing else.

    The image formation around it (the particle's shift, the CTF) is
    :class:`gmmplat.physics.image_model.ImageModel`'s.  ``forward(params, rotations)``:

    * ``params`` ``(B, N, 5)`` or ``(N, 5)`` (shared): x, y, z [Å], amplitude, sigma [Å]
    * ``rotations`` ``(B, 3, 3)``: RELION matrices A (map point r lands at ``(A r)[:2]``)
    * returns complex64 ``(B, Ky, Kx)`` (``band.band_to_images`` gives real images)

    A projector implements :meth:`render` (2D Gaussians -> Fourier image); the base turns the
    3D Gaussians into 2D ones (:meth:`in_plane`).
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

    def in_plane(self, params: torch.Tensor, rotations: torch.Tensor):
        """The 2D Gaussians of the projections: centres ``(B, N, 2)`` [Å] at ``(A r)[:2]``,
        weights ``(B, N)`` (the projection's integral in pixel units) and ``2π²σ²`` ``(B, N)`` [Å²]."""
        if params.ndim == 2:
            params = params.expand(rotations.shape[0], -1, -1)
        params = params.to(torch.float32)
        R = rotations.to(params.dtype)
        centres = torch.einsum("bij,bnj->bni", R[:, :2, :], params[..., XYZ])
        sigma = params[..., WIDTH]
        apix = float(self.band.pixel_size_angstrom)
        weight = params[..., AMPLITUDE] * (2 * math.pi * sigma**2) ** 1.5 / apix**2
        return centres, weight, (2 * math.pi**2) * sigma**2

    @abstractmethod
    def render(self, centres: torch.Tensor, weight: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """2D Gaussians (as :meth:`in_plane` gives them) -> complex64 ``(B, Ky, Kx)`` on the band."""
        ...

    def forward(self, params: torch.Tensor, rotations: torch.Tensor) -> torch.Tensor:
        """The bare projections ``(B, Ky, Kx)`` complex64: centred, no CTF."""
        return self.render(*self.in_plane(params, rotations))
