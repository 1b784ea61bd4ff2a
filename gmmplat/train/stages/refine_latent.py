"""``refine_latent``: each item's latent point from the likelihood of its image under the decoded
states (:mod:`gmmplat.refine.latent`; the E step of a refinement cycle).  Starts a cycle.

Spec: ``{"kind": "refine_latent", "anchors": 24, "stretch": 1.0, "high_res_angstrom": 10,
"temperature": 1, "junk_scale": 0}``.  The input is the last stage's latent (the encoder's at
first); the output becomes the state's latent.  ``junk_scale`` > 0: the items whose image the
decoded GMM fits at under this share of the median fitted scale
(:func:`gmmplat.refine.latent.junk_mask`) are left out of the decoders' training that follows and of
the next refinement's anchors.
"""
from __future__ import annotations

import numpy as np

from ...refine import latent as latent_refine
from ...refine.latent import DEFAULT_ANCHORS, DEFAULT_HIGH_RES_ANGSTROM, junk_mask
from ..config import _fraction, _number
from .base import STAGES, Stage

__all__ = ["RefineLatent"]


@STAGES.register("refine_latent")
class RefineLatent(Stage):
    options = {"anchors": DEFAULT_ANCHORS, "stretch": 1.0, "high_res_angstrom": DEFAULT_HIGH_RES_ANGSTROM,
               "temperature": 1.0, "junk_scale": 0.0}
    provides_refinement = True

    def check_options(self, config) -> None:
        w, s = self.where, self.spec
        s["anchors"] = _number(s["anchors"], f"{w}.anchors", 2, integer=True)
        s["stretch"] = _number(s["stretch"], f"{w}.stretch", 1.0)
        s["high_res_angstrom"] = _number(s["high_res_angstrom"], f"{w}.high_res_angstrom", 0.0, allow_none=True,
                                         strict_min=True)
        s["temperature"] = _number(s["temperature"], f"{w}.temperature", 0.0, strict_min=True)
        s["junk_scale"] = _fraction(s["junk_scale"], f"{w}.junk_scale")

    def run(self, state, resume: dict | None = None) -> None:
        trainer, cfg, s = state.trainer, state.config, self.spec
        start, label = state.current_latent()
        refined = latent_refine.refine_latent(state.model.decode, trainer.dataset, start, n_anchors=s["anchors"],
                                anchor_stretch=s["stretch"], temperature=s["temperature"],
                                high_res_angstrom=s["high_res_angstrom"], projector=cfg.projector, seed=cfg.seed,
                                batch_size=trainer.eval_batch_size, device=trainer.device,
                                progress=trainer.progress, anchor_mask=state.particle)
        state.cycle += 1
        state.refinement, state.refined_from = refined, (np.asarray(start, np.float32), label)
        state.latent, state.latent_label, state.latent_changed = refined.latent, "cycle", True
        n_junk = 0
        if s["junk_scale"]:
            state.particle = ~junk_mask(refined.fitted_scale, s["junk_scale"])[0]
            n_junk = int((~state.particle).sum())
        summary = refined.summary()
        state.records.append({"cycle": state.cycle, "anchors": int(s["anchors"]), "junk_left_out": n_junk,
                              "mean_posterior_entropy": summary["mean_posterior_entropy"],
                              "variance_kept": refined.variance_kept,
                              "refine_seconds": round(float(refined.seconds), 2),
                              "seconds": float(refined.seconds)})
