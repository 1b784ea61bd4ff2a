"""The forward model: GMM parameters and a particle batch -> predicted centred Fourier images.

``predicted = CTF · projection of the Gaussians shifted by −origin`` on one
:class:`gmmplat.physics.fourier.Band` — the only place where band, shift, CTF and projector are put
together; projectors only project.  The trainer (loss and validation), the gradient encoder,
the analysis and the notebooks all call :meth:`ImageModel.predict`, so a new projector or
CTF variant is swapped in here.  The RELION origin sign (image = projection translated by
−origin) lives in :meth:`ImageModel.project`.
"""
from __future__ import annotations

import torch
from torch import nn

from .ctf import CTFParams, ctf_rfft
from .fourier import Band

__all__ = ["ImageModel", "ctf_on_band"]


def ctf_on_band(ctf: CTFParams, band: Band) -> torch.Tensor:
    """The CTF of each particle on ``band``'s grid ``(B, Ky, Kx)`` float32 (the band knows box and pixel size)."""
    return ctf_rfft(ctf, band.box, band.pixel_size_angstrom, band).to(torch.float32)


class ImageModel(nn.Module):
    """Band + CTF + projector.

    Args:
        band: the frequencies predicted and compared (a round's resolution range).
        projector: a :class:`gmmplat.projectors.Projector` (its band is kept equal to ``band``).
    """

    def __init__(self, band: Band, projector: nn.Module):
        super().__init__()
        self.projector = projector
        self.band = band
        if projector.band is not band:
            projector.set_band(band)

    def set_band(self, band: Band) -> None:
        """Predict on another band (e.g. the next round's resolution)."""
        self.band = band
        self.projector.set_band(band)

    def ctf(self, ctf: CTFParams, device: torch.device | str | None = None) -> torch.Tensor:
        """The CTF on the band ``(B, Ky, Kx)`` float32."""
        return ctf_on_band(ctf if device is None else ctf.to(device), self.band)

    def observe(self, batch) -> torch.Tensor:
        """The batch's images on the band ``(B, Ky, Kx)`` complex (what :meth:`predict` is compared with)."""
        return self.band.images_to_band(batch.images.to(self.projector.kx.device, torch.float32))

    def predict(self, params: torch.Tensor, batch, ctf: torch.Tensor | None = None) -> torch.Tensor:
        """``params (B, N, 5)`` or ``(N, 5)`` -> predicted images of ``batch`` on the band ``(B, Ky, Kx)`` complex64.

        Uses the batch's poses (``rotations (B, 3, 3)``, ``shifts_angstrom (B, 2)``, RELION
        convention) and CTF; everything is moved to ``params``' device.  ``ctf``: the batch's
        :meth:`ctf` when already computed (several predictions of one batch, as the latent
        refinement makes, one per anchor).
        """
        device = params.device
        ctf = self.ctf(batch.ctf, device) if ctf is None else ctf
        return self.project(params, batch.rotations.to(device, torch.float32),
                            batch.shifts_angstrom.to(device, torch.float32), ctf)

    def project(self, params: torch.Tensor, rotations: torch.Tensor, shifts_angstrom: torch.Tensor,
                ctf: torch.Tensor | None = None) -> torch.Tensor:
        """Images of given poses: ``params (B, N, 5)`` or ``(N, 5)``, ``rotations (B, 3, 3)``,
        ``shifts_angstrom (B, 2)`` (rlnOriginX/YAngst), ``ctf (B, Ky, Kx)`` or None -> ``(B, Ky, Kx)`` complex64.

        The shift moves the projected centres before they are rendered: exact, and cheaper than
        a phase ramp on the whole band.
        """
        centres, weight, s2 = self.projector.in_plane(params, rotations)
        centres = centres - shifts_angstrom.to(centres.dtype)[:, None, :]  # RELION: particle at centre - origin
        F = self.projector.render(centres, weight, s2)
        return F if ctf is None else F * ctf

    def predict_images(self, params: torch.Tensor, batch) -> torch.Tensor:
        """Real images ``(B, M, M)`` of :meth:`predict` (low-pass filtered to the band)."""
        return self.band.band_to_images(self.predict(params, batch))
