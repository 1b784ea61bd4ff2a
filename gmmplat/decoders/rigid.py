"""Rigid-body decoder: each chosen domain rotates and translates as a whole
(paper: "Modeling localized domain movement using rigid body motion")."""
from __future__ import annotations

from typing import Sequence

import torch

from ..errors import ConfigError
from ..model.gmm import GMM, N_COLUMNS, XYZ, amplitude, xyz
from ..model.nets import make_mlp
from ..physics.geometry import axis_angle_to_matrix
from .base import DECODERS, Decoder


@DECODERS.register("rigid")
class RigidDecoder(Decoder):
    """``z (B, d)`` -> MLP -> 6 numbers per domain: rotation vector (radians, times
    ``rotation_scale_rad``) and translation (Å, times ``translation_scale_angstrom``).

    Domain k's Gaussians (mask ``neutral.extras["mask__<name>"]``, intersected with
    ``subset``) move as ``x' = c_k + R_k (x - c_k) + t_k`` about their amplitude-weighted
    neutral centroid ``c_k``; offsets are ``x' - x`` in the position columns, zero
    elsewhere.  Positions are transformed from the neutral GMM, so summed with other
    decoders' offsets the result is the neutral domain moved rigidly plus those offsets.

    Options: ``domains`` (list of mask names, required, must not overlap), hidden,
    activation, rotation_scale_rad, translation_scale_angstrom.
    """

    def __init__(
        self,
        latent_dim: int,
        neutral: GMM,
        subset: torch.Tensor | None = None,
        domains: Sequence[str] | str = (),
        hidden: Sequence[int] = (128, 128),
        activation: str = "relu",
        rotation_scale_rad: float = 0.3,
        translation_scale_angstrom: float = 5.0,
    ):
        super().__init__(latent_dim, neutral, subset)
        names = [domains] if isinstance(domains, str) else list(domains)
        if not names:
            raise ConfigError("the rigid decoder needs domains=[mask name, ...]")
        masks = neutral.masks()
        used = torch.zeros(self.n_gaussians, dtype=torch.bool)
        index, centroid = [], []
        for name in names:
            if name not in masks:
                known = ", ".join(sorted(masks)) or "none"
                raise ConfigError(f"no mask {name!r} in the neutral GMM (extras 'mask__{name}'); known: {known}")
            m = torch.as_tensor(masks[name], dtype=torch.bool).flatten()
            if m.shape != (self.n_gaussians,):
                raise ConfigError(f"mask {name!r} has {m.numel()} entries, the GMM has {self.n_gaussians} Gaussians")
            m = m & self.subset_mask
            if not bool(m.any()):
                raise ConfigError(f"domain {name!r} holds no Gaussian of the decoder's subset")
            if bool((m & used).any()):
                raise ConfigError(f"domain {name!r} overlaps another domain of the same rigid decoder")
            used |= m
            idx = torch.nonzero(m).flatten()
            w = amplitude(self.neutral_params[idx]).abs()
            w = w / w.sum() if float(w.sum()) > 0 else torch.full_like(w, 1.0 / len(idx))
            index.append(idx)
            centroid.append((w[:, None] * xyz(self.neutral_params[idx])).sum(0))
        self.domains = names
        self.register_buffer("domain_id", torch.cat([torch.full((len(i),), k) for k, i in enumerate(index)]))
        self.register_buffer("domain_gaussians", torch.cat(index))
        self.register_buffer("centroids", torch.stack(centroid))  # (K, 3)
        self.register_buffer("scales", torch.tensor([rotation_scale_rad] * 3 + [translation_scale_angstrom] * 3))
        self.mlp = make_mlp(latent_dim, 6 * len(names), hidden, activation, zero_last=True)

    def describe_motion(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-domain (order of ``domains``) ``rotation_rad (B, K, 3)`` (rotation vectors about the
        domain centroids) and ``translation_angstrom (B, K, 3)``."""
        out = self.mlp(z).reshape(z.shape[0], len(self.domains), 6) * self.scales
        rotation, translation = out.split(3, dim=-1)
        return {"rotation_rad": rotation, "translation_angstrom": translation}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        motion = self.describe_motion(z)
        rotvec, shift = motion["rotation_rad"], motion["translation_angstrom"]
        R = axis_angle_to_matrix(rotvec)  # (B, K, 3, 3)
        x = xyz(self.neutral_params[self.domain_gaussians])  # (G, 3)
        c = self.centroids[self.domain_id]  # (G, 3)
        rel = (x - c)[None]  # (1, G, 3)
        moved = c + torch.einsum("bgij,bgj->bgi", R[:, self.domain_id], rel.expand(z.shape[0], -1, -1))
        moved = moved + shift[:, self.domain_id]
        out = z.new_zeros(z.shape[0], self.n_gaussians, N_COLUMNS)
        out[:, self.domain_gaussians, XYZ] = moved - x
        return out
