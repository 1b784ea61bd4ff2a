"""Abstract encoder (particle -> latent vector) and the pieces encoders share.

An encoder is built as ``ENCODERS.build(name, latent_dim, context, **opts)``
where :class:`StepContext` carries what an encoder may need (the neutral GMM,
the loss band, the forward model and the loss of the current training round);
``forward(batch) -> z (B, latent_dim)``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..physics.fourier import Band
from ..registry import Registry

ENCODERS: Registry = Registry("encoder")


@dataclass
class StepContext:
    """What a step may need beyond its own options.

    * ``neutral``: the neutral :class:`gmmplat.model.gmm.GMM`
    * ``band``: the loss :class:`gmmplat.physics.fourier.Band` of the current round
    * ``image_model``: the round's forward model (:class:`gmmplat.physics.image_model.ImageModel`, on that band)
    * ``loss``: a :class:`gmmplat.losses.Loss` on that band

    The trainer owns these objects; when it moves to another band it hands encoders a
    new context with :meth:`Encoder.set_context`.
    """

    neutral: Any
    band: Band
    image_model: Any = None
    loss: Any = None


def _global_batch(x: torch.Tensor) -> torch.Tensor:
    """``x (b, C)`` of this process -> the rows of every process of a data-parallel run.

    Under ``torch.distributed`` (e.g. torchrun + DDP) each process holds a shard of the
    global batch; gathering the rows makes a batch statistic the same as in one process.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, x.cpu())
    return torch.cat(parts).to(x.device)


class RunningScale(nn.Module):
    """Divides inputs ``(B, ..., C)`` by a running root-mean-square per channel ``C``.

    In training mode each batch updates the running value (exponential average
    with ``momentum``; the first batch sets it) and the updated value is used;
    in eval mode the stored value is used.  So an encoded particle does not
    depend on the other particles of its batch once training is over, and the
    scale follows the input when it drifts (e.g. a new band between rounds).
    The per-batch statistic is robust: the median over particles of each
    particle's RMS, so a few outlier particles do not set the scale.  In data-parallel
    training the median is taken over the global batch (all processes), so the scale is
    the one a single process would compute.
    """

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-12):
        super().__init__()
        self.momentum, self.eps = float(momentum), float(eps)
        self.register_buffer("scale", torch.ones(channels))
        self.register_buffer("initialised", torch.tensor(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                per_particle = x.detach().reshape(x.shape[0], -1, x.shape[-1]).pow(2).mean(1).sqrt()  # (B, C)
                stat = _global_batch(per_particle).median(dim=0).values.clamp_min(self.eps)
                if bool(self.initialised):
                    self.scale.mul_(1 - self.momentum).add_(self.momentum * stat)
                else:
                    self.scale.copy_(stat)
                    self.initialised.fill_(True)
        return x / self.scale.clamp_min(self.eps)


class Encoder(ABC, nn.Module):
    """Maps a :class:`gmmplat.io.dataset.Batch` to latent vectors ``z (B, latent_dim)``."""

    def __init__(self, latent_dim: int, context: StepContext):
        super().__init__()
        if int(latent_dim) < 1:
            raise ConfigError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)
        self.context = context

    def set_context(self, context: StepContext) -> None:
        """Use another round's band / projector / loss (encoders that use them at call time)."""
        self.context = context

    @abstractmethod
    def forward(self, batch) -> torch.Tensor:  # pragma: no cover
        ...
