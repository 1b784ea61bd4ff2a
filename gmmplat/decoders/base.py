"""Abstract decoder: latent vectors -> offsets of the neutral GMM's parameters.

``DECODERS.build(name, latent_dim, neutral, subset=None, **opts)``;
``forward(z (B, d)) -> offsets (B, N, 5)`` (x, y, z [Å], amplitude, sigma [Å]),
added to the neutral parameters.  Every decoder's offsets are exactly zero for
every z at initialisation (zero-initialised last layer) and zero outside
``subset`` (indices of the Gaussians it may change; None = all).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry

DECODERS: Registry = Registry("decoder")


class Decoder(ABC, nn.Module):
    """Base of all decoders.

    Buffers: ``neutral_params (N, 5)``, ``subset_mask (N,)`` bool, ``subset_index (S,)`` long.

    What the trainer and the analysis ask of a decoder, all declared here (with no-op
    defaults a decoder overrides when it has the capability):

    * ``round_options``: the options a round may set for this decoder (a round's
      ``"decoder_options": {"<decoder name>": {...}}`` in the run config), with defaults;
    * :meth:`configure_round`: called at the start of every round with those options;
    * ``domains``: mask names of the domains the decoder moves as rigid bodies (the
      analysis reports rigid motions for these);
    * :meth:`describe_motion`: the decoder's own description of the motion at ``z``.
    """

    round_options: ClassVar[dict] = {}
    domains: Sequence[str] = ()

    def __init__(self, latent_dim: int, neutral, subset: torch.Tensor | None = None):
        super().__init__()
        if int(latent_dim) < 1:
            raise ConfigError(f"latent_dim must be >= 1, got {latent_dim}")
        self.latent_dim = int(latent_dim)
        params = neutral.params.detach().clone().to(torch.float32)
        n = params.shape[0]
        self.register_buffer("neutral_params", params)
        mask = torch.zeros(n, dtype=torch.bool)
        if subset is None:
            mask[:] = True
        else:
            subset = torch.as_tensor(subset)
            if subset.dtype == torch.bool:
                if subset.shape != (n,):
                    raise ConfigError(f"decoder subset mask has shape {tuple(subset.shape)}, expected ({n},)")
                mask = subset.clone()
            else:
                subset = subset.long().flatten()
                if subset.numel() and (subset.min() < 0 or subset.max() >= n):
                    raise ConfigError(f"decoder subset holds indices outside 0..{n - 1}")
                mask[subset] = True
        if not bool(mask.any()):
            raise ConfigError("decoder subset is empty")
        self.register_buffer("subset_mask", mask)
        self.register_buffer("subset_index", torch.nonzero(mask).flatten())

    @property
    def n_gaussians(self) -> int:
        return int(self.neutral_params.shape[0])

    def scatter(self, values: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """Subset values ``(B, S, C)`` for parameter ``columns (C,)`` -> offsets ``(B, N, 5)``."""
        B = values.shape[0]
        out = values.new_zeros(B, self.n_gaussians, 5)
        out[:, self.subset_index[:, None], columns[None, :]] = values
        return out

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or resume) training of this decoder's parameters."""
        for p in self.parameters():
            p.requires_grad_(not frozen)

    def configure_round(self, options: dict, trained: bool) -> None:
        """Start of a training round: ``options`` (keys of ``round_options``), ``trained``: whether
        the decoder trains in this round.  The base checks the option names and does nothing else."""
        unknown = sorted(set(options) - set(self.round_options))
        if unknown:
            known = ", ".join(sorted(self.round_options)) or "none"
            raise ConfigError(f"round option(s) {', '.join(unknown)} unknown to the {type(self).__name__}; known: {known}")

    def describe_motion(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named, decoder-specific quantities of the motion at ``z (B, d)`` (e.g. per-domain
        rotations); empty when the decoder has none beyond its offsets."""
        return {}

    @abstractmethod
    def forward(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        ...


def moving_columns(move_position: bool, move_amplitude: bool, move_sigma: bool) -> torch.Tensor:
    """Parameter columns a decoder changes: x, y, z (0..2), amplitude (3), sigma (4)."""
    cols = ([0, 1, 2] if move_position else []) + ([3] if move_amplitude else []) + ([4] if move_sigma else [])
    if not cols:
        raise ConfigError("decoder moves nothing: enable move_position, move_amplitude or move_sigma")
    return torch.tensor(cols, dtype=torch.long)


def column_scales(columns: torch.Tensor, position_scale_angstrom: float, amplitude_scale: float,
                  sigma_scale_angstrom: float) -> torch.Tensor:
    """Factor applied to the network output of each column (C,): Å per unit, etc."""
    table = torch.tensor([position_scale_angstrom] * 3 + [amplitude_scale, sigma_scale_angstrom], dtype=torch.float32)
    return table[columns]
