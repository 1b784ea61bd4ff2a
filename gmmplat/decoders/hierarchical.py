"""Hierarchical decoder: offsets of a small GMM (M Gaussians), spread to the large
GMM (N Gaussians) through an (M, N) transition matrix (paper: "Large scale global
morphing with hierarchical GMMs")."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from ..model.gmm import GMM, N_COLUMNS
from ..model.nets import make_mlp
from .base import DECODERS, Decoder


@DECODERS.register("hierarchical")
class HierarchicalDecoder(Decoder):
    """``z (B, d)`` -> MLP -> small-GMM offsets ``(B, M, C)`` -> ``Tᵀ`` -> ``(B, N, C)``.

    Needs ``neutral.extras["small_params"] (M, 5)`` and ``neutral.extras["transition"] (M, N)``
    (``exp(-50 D²)`` weights of the small-large distances, built with the small GMM).

    Round 1: the transition is a registered buffer (constant, not trained).
    Round 2 (round option ``train_transition``, when the decoder trains in that round):
    ``set_transition_trainable(True)`` turns it into an ``nn.Parameter`` (the trainable
    dense layer of the paper); the trainer then builds its optimizer so the new parameter
    is included.  The state-dict key is ``transition`` in both cases.

    Options:
        normalize_transition: divide each column of the transition by its sum over the
            small Gaussians (default True), so a translation of the whole small GMM moves
            every large Gaussian by the same translation (columns summing to 0 stay 0).
        hidden, activation, and the columns (move_position / move_amplitude / move_sigma,
        position_scale_angstrom, amplitude_scale, sigma_scale_angstrom): as the free decoder
            (amplitude relative to the small GMM's mean amplitude).
    Large Gaussians outside ``subset`` get zero offsets.
    """

    round_options = {"train_transition": False}

    def __init__(
        self,
        latent_dim: int,
        neutral: GMM,
        subset: torch.Tensor | None = None,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        normalize_transition: bool = True,
        **columns,
    ):
        super().__init__(latent_dim, neutral, subset)
        extras = neutral.extras
        if "small_params" not in extras or "transition" not in extras:
            raise ConfigError(
                "the hierarchical decoder needs a small GMM and its transition matrix in the neutral GMM "
                "(extras 'small_params' and 'transition'); build the small GMM first"
            )
        small = torch.as_tensor(extras["small_params"], dtype=torch.float32)
        T = torch.as_tensor(extras["transition"], dtype=torch.float32).clone()
        if small.ndim != 2 or small.shape[1] != N_COLUMNS:
            raise ConfigError(f"small_params must be (M, {N_COLUMNS}), got {tuple(small.shape)}")
        if T.shape != (small.shape[0], self.n_gaussians):
            raise ConfigError(
                f"transition must be (M, N) = ({small.shape[0]}, {self.n_gaussians}), got {tuple(T.shape)}"
            )
        if normalize_transition:
            total = T.sum(0, keepdim=True)
            T = torch.where(total > 0, T / total.clamp_min(1e-30), T)
        self.register_buffer("small_params", small)
        self.register_buffer("transition", T)
        C = self.use_columns(**{"move_amplitude": False, **columns}, reference=small)
        self.mlp = make_mlp(latent_dim, small.shape[0] * C, hidden, activation, zero_last=True)

    @property
    def n_small(self) -> int:
        return int(self.small_params.shape[0])

    @property
    def transition_trainable(self) -> bool:
        return isinstance(self.transition, nn.Parameter)

    def configure_round(self, options: dict, trained: bool) -> None:
        super().configure_round(options, trained)
        self.set_transition_trainable(bool(options.get("train_transition", False)) and trained)

    def describe_motion(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """``small_offsets (B, M, 5)``: the offsets of the small GMM."""
        return {"small_offsets": self.small_offsets(z)}

    def set_transition_trainable(self, trainable: bool = True) -> None:
        """Round 2: make the transition an ``nn.Parameter`` (True) or a constant buffer again (False).

        Idempotent: asking for the current state keeps the same tensor (optimizer state stays valid).
        """
        if bool(trainable) == self.transition_trainable:
            return
        T = self.transition.detach().clone()
        delattr(self, "transition")
        if trainable:
            self.transition = nn.Parameter(T)
        else:
            self.register_buffer("transition", T)

    def small_offsets(self, z: torch.Tensor) -> torch.Tensor:
        """Offsets of the small GMM ``(B, M, 5)`` (zero in columns that do not move)."""
        return self.place(self.mlp(z).reshape(z.shape[0], self.n_small, len(self.columns)))

    def spread(self, small_offsets: torch.Tensor) -> torch.Tensor:
        """Small-GMM offsets ``(B, M, 5)`` -> large-GMM offsets ``(B, N, 5)`` (zero outside the subset)."""
        large = torch.einsum("mn,bmc->bnc", self.transition, small_offsets)
        return large * self.subset_mask[None, :, None].to(large.dtype)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.spread(self.small_offsets(z))
