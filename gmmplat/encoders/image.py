"""Image encoder: the particle image itself (low-pass, Fourier or real space) -> MLP -> z."""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import ConfigError
from ..model.nets import make_mlp
from ..physics.fourier import Band
from .base import ENCODERS, Encoder, RunningScale, StepContext


@ENCODERS.register("image")
class ImageEncoder(Encoder):
    """Encodes the particle image ``batch.images (B, M, M)``.

    The input band is fixed at construction, ``Band(box, apix, input_res_angstrom)``,
    independent of the loss band, so the network's input does not change when
    the trainer moves the loss to a higher resolution between rounds.
    ``input_res_angstrom`` defaults to the context band's high-resolution limit
    at construction.

    Options:
        representation: ``"fourier"`` (default) -- the centred rfft on the input band,
            real and imaginary parts flattened (``2·Ky·Kx`` inputs); ``"real"`` -- the
            low-pass filtered real image (``M·M`` inputs).
        hidden: hidden layer widths of the MLP; activation: its nonlinearity.
        momentum: of the running input scale (:class:`RunningScale`, robust per-batch RMS).
    """

    def __init__(
        self,
        latent_dim: int,
        context: StepContext,
        input_res_angstrom: float | None = None,
        representation: str = "fourier",
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
        momentum: float = 0.1,
    ):
        super().__init__(latent_dim, context)
        band = context.band
        res = band.high_res_angstrom if input_res_angstrom is None else float(input_res_angstrom)
        self.input_band = Band(band.box, band.pixel_size_angstrom, res)
        if representation not in ("fourier", "real"):
            raise ConfigError(f"image encoder representation must be 'fourier' or 'real', got {representation!r}")
        self.representation = representation
        ky, kx = self.input_band.shape
        n_in = 2 * ky * kx if representation == "fourier" else band.box**2
        self.scale = RunningScale(1, momentum=momentum)
        self.mlp = make_mlp(n_in, latent_dim, hidden, activation)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, M, M)`` -> unscaled network input ``(B, n_in)``."""
        F = self.input_band.images_to_band(images.to(torch.float32))
        if self.representation == "real":
            return self.input_band.band_to_images(F).flatten(1)
        return torch.view_as_real(F).flatten(1)

    def forward(self, batch) -> torch.Tensor:
        x = self.features(batch.images)
        return self.mlp(self.scale(x[..., None])[..., 0])
