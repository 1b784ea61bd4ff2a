"""``refine_latent``: each item's latent point from the likelihood of its image under the decoded
states (:mod:`gmmplat.refine.latent`; the E step of a refinement cycle).  Starts a cycle.

Spec: ``{"kind": "refine_latent", "anchors": 24, "stretch": 1.0, "high_res_angstrom": 10,
"temperature": 1, "junk_scale": 0, "pose_samples": 1}``.  The input is the last stage's latent (the encoder's at
first); the output becomes the state's latent.  ``junk_scale`` > 0: the items whose image the
decoded GMM fits at under this share of the median fitted scale
(:func:`gmmplat.refine.latent.junk_mask`) are left out of the decoders' training that follows and of
the next refinement's anchors.  ``pose_samples`` > 1 (after a ``refine_poses`` stage): each anchor's
likelihood is the mean over that many poses about the corrected one, drawn with the spread the pose
refinement left (:attr:`gmmplat.refine.poses.PoseCorrections.spread`); where that spread changes no
projection measurably (exact poses) the corrected pose alone is used.
"""
from __future__ import annotations

import numpy as np

from ...refine import latent as latent_refine
from ...refine.latent import (DEFAULT_ANCHORS, DEFAULT_HIGH_RES_ANGSTROM, effective_pose_samples, junk_mask,
                              refinement_band)
from ..config import _fraction, _number
from .base import STAGES, Stage

__all__ = ["RefineLatent"]


@STAGES.register("refine_latent")
class RefineLatent(Stage):
    options = {"anchors": DEFAULT_ANCHORS, "stretch": 1.0, "high_res_angstrom": DEFAULT_HIGH_RES_ANGSTROM,
               "temperature": 1.0, "junk_scale": 0.0, "pose_samples": 1}
    provides_refinement = True

    @property
    def needs_poses(self) -> bool:
        return self.spec["pose_samples"] > 1

    def check_options(self, config) -> None:
        w, s = self.where, self.spec
        s["anchors"] = _number(s["anchors"], f"{w}.anchors", 2, integer=True)
        s["stretch"] = _number(s["stretch"], f"{w}.stretch", 1.0)
        s["high_res_angstrom"] = _number(s["high_res_angstrom"], f"{w}.high_res_angstrom", 0.0, allow_none=True,
                                         strict_min=True)
        s["temperature"] = _number(s["temperature"], f"{w}.temperature", 0.0, strict_min=True)
        s["junk_scale"] = _fraction(s["junk_scale"], f"{w}.junk_scale")
        s["pose_samples"] = _number(s["pose_samples"], f"{w}.pose_samples", 1, integer=True)

    def run(self, state, resume: dict | None = None) -> None:
        trainer, cfg, s = state.trainer, state.config, self.spec
        start, label = state.current_latent()
        samples, spread = self.pose_sampling(trainer.dataset)
        refined = latent_refine.refine_latent(state.model.decode, trainer.dataset, start, n_anchors=s["anchors"],
                                anchor_stretch=s["stretch"], temperature=s["temperature"],
                                high_res_angstrom=s["high_res_angstrom"], projector=cfg.projector, seed=cfg.seed,
                                batch_size=trainer.eval_batch_size, device=trainer.device,
                                progress=trainer.progress, anchor_mask=state.particle, pose_samples=samples,
                                pose_spread_deg=spread[0], pose_spread_angstrom=spread[1])
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
                              **({"pose_samples": samples, "pose_spread_deg": round(spread[0], 3),
                                  "pose_spread_angstrom": round(spread[1], 3)} if s["pose_samples"] > 1 else {}),
                              "refine_seconds": round(float(refined.seconds), 2),
                              "seconds": float(refined.seconds)})

    def pose_sampling(self, dataset) -> tuple[int, tuple[float, float]]:
        """``(pose samples, (spread in degrees, in Å))``: one sample where the spread left by the pose
        refinement changes no projection measurably (:func:`gmmplat.refine.latent.effective_pose_samples`)."""
        corrections = dataset.pose_corrections
        spread = corrections.spread_deg_angstrom() if corrections is not None else (0.0, 0.0)
        band = refinement_band(dataset.box, dataset.pixel_size_angstrom, self.spec["high_res_angstrom"])
        samples = effective_pose_samples(self.spec["pose_samples"], *spread, band)
        return samples, spread if samples > 1 else (0.0, 0.0)
