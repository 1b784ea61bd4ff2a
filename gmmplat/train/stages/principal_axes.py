"""``principal_axes``: the latent projected onto its leading principal axes
(:func:`gmmplat.refine.latent.principal_subspace`).

Spec: ``{"kind": "principal_axes", "components": null}`` (null: the Kaiser rule).  After a
refinement, the axes the images do not pin down carry only its scatter; decoders trained on them
place the frame means badly (docs/training.md, "Refinement cycles").
"""
from __future__ import annotations

from ...refine.latent import principal_subspace
from ..config import _number
from .base import STAGES, Stage

__all__ = ["PrincipalAxes"]


@STAGES.register("principal_axes")
class PrincipalAxes(Stage):
    options = {"components": None}
    needs_refinement = True

    def check_options(self, config) -> None:
        from ...errors import ConfigError

        c = _number(self.spec["components"], f"{self.where}.components", 1, integer=True, allow_none=True)
        if c is not None and c > config.latent_dim:
            raise ConfigError(f"{self.where}.components: {c} principal components, but latent_dim is "
                              f"{config.latent_dim}")
        self.spec["components"] = c

    def run(self, state, resume: dict | None = None) -> None:
        latent, label = state.current_latent()
        state.latent, kept = principal_subspace(latent, self.spec["components"])
        state.latent_label = label
        if state.records:
            state.record()["components"] = int(kept)
