"""Abstract decoder: latent vectors -> offsets of the neutral GMM's parameters.

``DECODERS.build(name, latent_dim, neutral, subset=None, **opts)``;
``forward(z (B, d)) -> offsets (B, N, 5)`` (x, y, z [Å], amplitude, sigma [Å]),
added to the neutral parameters.  Every decoder's offsets are exactly zero for
every z at initialisation (zero-initialised last layer) and zero outside
``subset`` (indices of the Gaussians it may change; None = all).

Which columns move and by how much is the base's business (:meth:`Decoder.use_columns`):
a decoder maps z to raw numbers ``(B, K, C)``, one per moving column, and
:meth:`Decoder.place` / :meth:`Decoder.subset_offsets` scale them and put them in
their columns.  One unit of raw output is ``position_scale_angstrom`` Å,
``amplitude_scale`` × the mean |amplitude| of the reference Gaussians (the subset's,
unless the decoder names others), and ``sigma_scale_angstrom`` Å.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..model.gmm import AMPLITUDE, GMM, N_COLUMNS, POSITION_COLUMNS, WIDTH, amplitude
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
    * :meth:`describe_motion`: the decoder's own description of the motion at ``z``;
    * ``on_new_latent``: what a fixed-latent stage of the schedule
      (:mod:`gmmplat.train.stages.fit_decoders`) does with the decoder when the latent has changed
      since it last trained: ``"continue"`` from its weights, ``"rebuild"`` from fresh ones, or
      ``"freeze"`` (kept as it is); a stage's ``decoders`` option overrides it for all.
    """

    round_options: ClassVar[dict] = {}
    on_new_latent: ClassVar[str] = "continue"
    domains: Sequence[str] = ()

    def __init__(self, latent_dim: int, neutral: GMM, subset: torch.Tensor | None = None):
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
        out = values.new_zeros(B, self.n_gaussians, N_COLUMNS)
        out[:, self.subset_index[:, None], columns[None, :]] = values
        return out

    def use_columns(self, move_position: bool = True, move_amplitude: bool = False, move_sigma: bool = False,
                    position_scale_angstrom: float = 1.0, amplitude_scale: float = 0.1,
                    sigma_scale_angstrom: float = 0.1, reference: torch.Tensor | None = None) -> int:
        """Declare the columns the decoder's raw output moves and the size of one unit; returns C.

        Registers buffers ``columns (C,)`` and ``column_scale (C,)``.  ``amplitude_scale`` is
        relative to the mean |amplitude| of ``reference (K, 5)`` (default: the subset's neutral
        Gaussians), so the raw output is unit-free in every column.
        """
        columns = moving_columns(move_position, move_amplitude, move_sigma)
        ref = self.neutral_params[self.subset_index] if reference is None else reference
        mean_amplitude = amplitude(ref).abs().mean().clamp_min(1e-12)
        table = column_scales(columns, position_scale_angstrom, amplitude_scale, sigma_scale_angstrom)
        self.register_buffer("columns", columns)
        self.register_buffer("column_scale", torch.where(columns == AMPLITUDE, table * mean_amplitude, table))
        return len(columns)

    def place(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw output ``(B, K, C)`` -> scaled offsets ``(B, K, 5)`` (zero in the columns that do not move)."""
        out = raw.new_zeros(raw.shape[0], raw.shape[1], N_COLUMNS)
        out[:, :, self.columns] = raw * self.column_scale
        return out

    def subset_offsets(self, raw: torch.Tensor) -> torch.Tensor:
        """Raw output for the subset's Gaussians ``(B, S, C)`` -> offsets ``(B, N, 5)`` (scaled, zero elsewhere)."""
        return self.scatter(raw * self.column_scale, self.columns)

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
    """Parameter columns a decoder changes (x, y, z; amplitude; sigma), in column order ``(C,)``."""
    cols = ((list(POSITION_COLUMNS) if move_position else []) + ([AMPLITUDE] if move_amplitude else [])
            + ([WIDTH] if move_sigma else []))
    if not cols:
        raise ConfigError("decoder moves nothing: enable move_position, move_amplitude or move_sigma")
    return torch.tensor(cols, dtype=torch.long)


def column_scales(columns: torch.Tensor, position_scale_angstrom: float, amplitude_scale: float,
                  sigma_scale_angstrom: float) -> torch.Tensor:
    """Factor applied to the network output of each column (C,): Å per unit, etc."""
    table = torch.zeros(N_COLUMNS)
    table[list(POSITION_COLUMNS)] = position_scale_angstrom
    table[AMPLITUDE], table[WIDTH] = amplitude_scale, sigma_scale_angstrom
    return table[columns]
