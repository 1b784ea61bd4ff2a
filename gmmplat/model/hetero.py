"""The composed heterogeneity model: encoder -> latent (+ fixed-width noise) -> decoders -> GMMs.

``params = neutral (N, 5) + Σ_k decoder_k(z)``, one GMM per particle ``(B, N, 5)``.
The trainer forms the projections, the loss, the regularizers and
:meth:`HeteroModel.latent_penalty_term`.
"""
from __future__ import annotations

import torch
from torch import nn

from ..decoders.base import Decoder
from ..decoders.multi import MultiDecoder
from ..encoders.base import Encoder, StepContext
from .gmm import GMM

__all__ = ["HeteroModel", "StepContext"]


class HeteroModel(nn.Module):
    """Encoder + :class:`MultiDecoder` around a neutral GMM.

    Args:
        encoder: ``batch -> z (B, d)``.
        decoder: a :class:`MultiDecoder` (a single :class:`Decoder` is wrapped in one).
        neutral: the neutral :class:`gmmplat.model.gmm.GMM` (its params become buffer ``neutral_params``).
        latent_noise_std: width of the Gaussian noise added to z while training (fixed, not
            trained; the paper's VAE-like continuity of the latent space).
        latent_penalty: weight of :meth:`latent_penalty_term`'s unit-ball term.
        latent_shrink: weight of :meth:`latent_penalty_term`'s ``mean_b |z_b|²`` term: against
            the fixed noise it squeezes latent dimensions that explain little of the images
            (nuisance, noise) towards 0, so the decoders cannot use them.
    """

    def __init__(self, encoder: Encoder, decoder: MultiDecoder | Decoder, neutral: GMM,
                 latent_noise_std: float = 0.1, latent_penalty: float = 0.01,
                 latent_shrink: float = 0.0):
        super().__init__()
        if not isinstance(decoder, MultiDecoder):
            decoder = MultiDecoder([decoder])
        self.encoder = encoder
        self.decoder = decoder
        self.neutral = neutral
        self.latent_noise_std = float(latent_noise_std)
        self.latent_penalty = float(latent_penalty)
        self.latent_shrink = float(latent_shrink)
        self.register_buffer("neutral_params", neutral.params.detach().clone().to(torch.float32))

    @property
    def latent_dim(self) -> int:
        return self.encoder.latent_dim

    def encode(self, batch) -> torch.Tensor:
        """Latent vectors ``(B, d)`` without noise (analysis)."""
        return self.encoder(batch)

    def params_from_z(self, z: torch.Tensor) -> torch.Tensor:
        """Per-particle GMMs ``(B, N, 5)`` = neutral + summed decoder offsets."""
        return self.neutral_params + self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`params_from_z` (analysis: e.g. GMMs along a latent trajectory)."""
        return self.params_from_z(z)

    def forward(self, batch, training: bool = True, generator: torch.Generator | None = None,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``-> (params (B, N, 5), z (B, d))``.

        With ``training=True`` the decoders see ``z + latent_noise_std · ε`` (ε ~ N(0, 1):
        ``noise (B, d)`` when given — the trainer draws it per global batch so that
        distributed and single-process runs agree — else drawn from ``generator``, which
        must live on z's device); the returned ``z`` is the encoder's output without noise
        (what :meth:`latent_penalty_term` takes).
        """
        z = self.encoder(batch)
        z_dec = z
        if training and self.latent_noise_std > 0:
            if noise is None:
                noise = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            z_dec = z + self.latent_noise_std * noise.to(z.dtype)
        return self.params_from_z(z_dec), z

    def latent_penalty_term(self, z: torch.Tensor) -> torch.Tensor:
        """``latent_penalty · mean_b max(0, |z_b|² − 1) + latent_shrink · mean_b |z_b|²``: keeps the
        latent vectors within the unit ball and (``latent_shrink`` > 0) shrinks them towards 0."""
        norm2 = z.pow(2).sum(dim=1)
        term = self.latent_penalty * torch.relu(norm2 - 1.0).mean()
        if self.latent_shrink > 0:
            term = term + self.latent_shrink * norm2.mean()
        return term
