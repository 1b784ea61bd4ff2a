"""``refine_poses``: every item's pose and origin refined under its decoded GMM
(:mod:`gmmplat.refine.poses`); the dataset applies the corrections from then on.

Spec: ``{"kind": "refine_poses", "steps": 20, "sigma_deg": 20, "sigma_angstrom": 5,
"high_res_angstrom": "refinement"}``: Adam steps, the weak Gaussian prior about the stated pose and
the band (the refinement's, null for Nyquist, or a resolution in Å).  It needs a refinement before it
(the decoded GMM at each item's refined point, and the noise per ring, estimated on the full plane).
"""
from __future__ import annotations

import time

from ...refine.latent import refinement_band
from ...refine.poses import noise_on_band, refine_poses
from ..config import _band_or_refinement, _number
from .base import STAGES, Stage

__all__ = ["RefinePoses"]


@STAGES.register("refine_poses")
class RefinePoses(Stage):
    options = {"steps": 20, "sigma_deg": 20.0, "sigma_angstrom": 5.0, "high_res_angstrom": "refinement"}
    needs_refinement = True
    provides_poses = True

    def check_options(self, config) -> None:
        w, s = self.where, self.spec
        s["steps"] = _number(s["steps"], f"{w}.steps", 1, integer=True)
        s["sigma_deg"] = _number(s["sigma_deg"], f"{w}.sigma_deg", 0.0, strict_min=True)
        s["sigma_angstrom"] = _number(s["sigma_angstrom"], f"{w}.sigma_angstrom", 0.0, strict_min=True)
        s["high_res_angstrom"] = _band_or_refinement(s["high_res_angstrom"], f"{w}.high_res_angstrom")

    def run(self, state, resume: dict | None = None) -> None:
        refined, trainer, data, s = state.refinement, state.trainer, state.trainer.dataset, self.spec
        start = time.perf_counter()
        high_res = s["high_res_angstrom"]
        band = refinement_band(data.box, data.pixel_size_angstrom,
                               refined.options["high_res_angstrom"] if high_res == "refinement" else high_res)
        noise = refined.noise_per_ring
        if high_res != "refinement":  # the refinement's noise covers its own band's rings only
            noise = noise_on_band(state.model.decode, data, refined.latent, band, projector=state.config.projector,
                                  seed=state.config.seed, batch_size=trainer.eval_batch_size, device=trainer.device)
        previous = data.pose_corrections
        data.set_pose_corrections(None)  # refine_poses starts from `previous` itself
        poses = refine_poses(state.model.decode, data, refined.latent, noise, band, start=previous,
                             projector=state.config.projector, steps=s["steps"], rotation_sigma_deg=s["sigma_deg"],
                             shift_sigma_angstrom=s["sigma_angstrom"], batch_size=trainer.eval_batch_size,
                             device=trainer.device, progress=trainer.progress)
        data.set_pose_corrections(poses)
        if state.records:
            state.record().update({"pose_seconds": round(time.perf_counter() - start, 2),
                                   **{f"pose_{k}": round(v, 3) for k, v in poses.summary().items()}})
