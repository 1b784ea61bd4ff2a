"""Gradient encoder (as EMAN2's e2gmm_refine_new): each particle's gradient of the loss
with respect to the neutral GMM's positions and amplitudes -> MLP -> z."""
from __future__ import annotations

import copy
from typing import Sequence

import torch

from ..errors import ConfigError
from ..model.gmm import AMPLITUDE, POSITION_COLUMNS
from ..model.nets import make_mlp
from ..physics.fourier import Band
from .base import ENCODERS, Encoder, RunningScale, StepContext


INPUT_COLUMNS = [*POSITION_COLUMNS, AMPLITUDE]  # the gradient's channels: x, y, z, amplitude


@ENCODERS.register("gradient")
class GradientEncoder(Encoder):
    """Input: ``∂ loss_b / ∂ neutral[:, (x, y, z, amplitude)]`` for each particle b, shape ``(B, N, 4)``
    (x, y, z in 1/Å units of the loss, amplitude), each of the 4 channels divided by
    its running RMS (:class:`RunningScale`), flattened to ``4N`` inputs of an MLP.

    The gradient is computed with ``torch.autograd.grad`` against a detached copy of
    the neutral parameters, without ``create_graph``: it is a constant input, no
    gradient flows from it into decoders or the neutral GMM.  It is computed even
    under ``torch.no_grad()`` (analysis).

    Band: with ``input_res_angstrom=None`` (default) the gradient uses the context's
    projector, loss and band at call time, so it follows the trainer's band between
    rounds (the running scale adapts).  With ``input_res_angstrom`` set, the encoder
    keeps its own copies of the image model and loss on that fixed band.

    Options: hidden, activation, momentum (as the image encoder).
    """

    def __init__(
        self,
        latent_dim: int,
        context: StepContext,
        input_res_angstrom: float | None = None,
        hidden: Sequence[int] = (256, 128),
        activation: str = "relu",
        momentum: float = 0.1,
    ):
        super().__init__(latent_dim, context)
        if context.image_model is None or context.loss is None:
            raise ConfigError("the gradient encoder needs the context's image model and loss")
        self.input_res_angstrom = None if input_res_angstrom is None else float(input_res_angstrom)
        self._own = None
        if self.input_res_angstrom is not None:
            self._own = self._fixed_copies(context)
        n = int(context.neutral.params.shape[0])
        self.register_buffer("neutral_params", context.neutral.params.detach().clone().to(torch.float32))
        self.scale = RunningScale(4, momentum=momentum)
        self.mlp = make_mlp(4 * n, latent_dim, hidden, activation)

    def _fixed_copies(self, context: StepContext):
        b = context.band
        band = Band(b.box, b.pixel_size_angstrom, self.input_res_angstrom)
        image_model, loss = copy.deepcopy(context.image_model), copy.deepcopy(context.loss)
        image_model.set_band(band)
        loss.set_band(band)
        return image_model, loss

    def set_context(self, context: StepContext) -> None:
        super().set_context(context)
        if self.input_res_angstrom is not None:
            self._own = self._fixed_copies(context)

    def input_gradient(self, batch) -> torch.Tensor:
        """Per-particle gradient ``(B, N, 4)`` of the loss at the neutral GMM (detached)."""
        image_model, loss_fn = (self.context.image_model, self.context.loss) if self._own is None else self._own
        device = self.neutral_params.device
        image_model.to(device)
        loss_fn.to(device)
        B = batch.images.shape[0]
        observed = image_model.observe(batch)
        with torch.enable_grad():
            p = self.neutral_params.detach().expand(B, -1, -1).clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss_fn(image_model.predict(p, batch), observed).sum(), p)
        return grad[..., INPUT_COLUMNS].detach()

    def forward(self, batch) -> torch.Tensor:
        g = self.scale(self.input_gradient(batch))
        return self.mlp(g.flatten(1))
