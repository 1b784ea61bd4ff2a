"""Several decoders fed by the same latent vector; their offsets add up
(paper: "Coordinating structural heterogeneity analysis of multiple modes")."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ..errors import ConfigError
from .base import Decoder


class MultiDecoder(nn.Module):
    """``forward(z (B, d)) -> Σ_k decoder_k(z)``, shape ``(B, N, 5)``.

    Round 2 of a multi-mode analysis adds a decoder (:meth:`add`) and may freeze the
    first (:meth:`freeze`); the trainer rebuilds its optimizer afterwards (frozen
    parameters have ``requires_grad=False``).
    """

    def __init__(self, decoders: Iterable[Decoder] = ()):
        super().__init__()
        self.decoders = nn.ModuleList()
        for d in decoders:
            self.add(d)

    def add(self, decoder: Decoder) -> int:
        """Append a decoder; returns its index."""
        if len(self.decoders):
            first = self.decoders[0]
            if decoder.latent_dim != first.latent_dim or decoder.n_gaussians != first.n_gaussians:
                raise ConfigError(
                    f"decoders disagree: latent_dim {decoder.latent_dim} vs {first.latent_dim}, "
                    f"Gaussians {decoder.n_gaussians} vs {first.n_gaussians}"
                )
        self.decoders.append(decoder)
        return len(self.decoders) - 1

    def freeze(self, index: int | Iterable[int], frozen: bool = True) -> None:
        """Stop (or resume, ``frozen=False``) training of the decoder(s) at ``index``."""
        for i in [index] if isinstance(index, int) else list(index):
            self.decoders[i].freeze(frozen)

    @property
    def latent_dim(self) -> int:
        return self.decoders[0].latent_dim

    @property
    def n_gaussians(self) -> int:
        return self.decoders[0].n_gaussians

    @property
    def domains(self) -> list[str]:
        """The rigid-body domains of all decoders (first appearance order)."""
        return list(dict.fromkeys(n for d in self.decoders for n in d.domains))

    def __len__(self) -> int:
        return len(self.decoders)

    def __getitem__(self, i: int) -> Decoder:
        return self.decoders[i]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not len(self.decoders):
            raise ConfigError("MultiDecoder holds no decoder")
        out = self.decoders[0](z)
        for d in self.decoders[1:]:
            out = out + d(z)
        return out
