"""A run's wall time measured on a sample of its own particles, then scaled to all of them.

The cost model (:mod:`gmmplat.train.cost`) predicts from a table measured once, on one machine, for
one preset's steps.  This measures instead: the run's own schedule, trimmed to one epoch per
training stage and one refinement cycle, trains on the first ``sample`` particles with the run's
device and threads, and each stage's seconds are scaled by the items it would see
(docs/performance.md, "Cost model").  It costs a few seconds at box 64, minutes at box 256.

Scaling: the trial runs on two samples (after a smaller one that warms the process up), and each
stage's seconds are fitted as ``a + b · x``, ``x`` what its work grows with: the items (particles ×
symmetry copies), or for a latent refinement the items it projects, ``n + min(n, 1000)`` (the noise
subset goes first).  A training or fixed-latent stage counts once per epoch; a refinement's
``b`` part scales with its anchors over the sampled stage's.  Fixed costs (start, outputs):
``fixed_s`` of the cost model's coefficients.
"""
from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path

from .config import RunConfig
from .cost import Estimate, load_coefficients, refined_items
from .schedule import schedule_specs

__all__ = ["trial_schedule", "calibrated_estimate", "SAMPLE_SIZES"]

#: particles of the warm-up sample and of the two timed ones, at ``--estimate-sample`` 256
SAMPLE_SIZES = (0.25, 0.5, 1.0)


def trial_schedule(config: RunConfig) -> tuple[list[dict], list[dict]]:
    """``(the full schedule's specs, the trial's)``: every stage up to the end of the first refinement cycle
    (its ``fit_decoders`` included), each training stage at one epoch; a pose refinement of a later
    cycle follows the first refinement when the first cycle has none."""
    full = schedule_specs(config)
    trial, seen_refine = [], False
    for spec in full:
        if spec["kind"] == "refine_latent":
            if seen_refine:
                break
            seen_refine = True
        trial.append({**spec, "epochs": 1} if spec["kind"] == "fit_decoders" else dict(spec))
    poses = [s for s in full if s["kind"] == "refine_poses"]
    if poses and not any(s["kind"] == "refine_poses" for s in trial):
        # poses refined in later cycles only (refine.pose_cycles): timed after the trial's refinement
        at = next(i for i, s in enumerate(trial) if s["kind"] == "refine_latent") + 1
        trial.insert(at, dict(poses[0]))
    return full, trial


def _trial(config: RunConfig, trial: list[dict], star: str, datadir: str, device: str) -> dict[int, float]:
    """Seconds of each stage of ``trial`` trained on ``star``."""
    from .loop import Trainer

    d = copy.deepcopy(config.to_dict())
    d["rounds"] = [{**r, "epochs": 1} for r in d["rounds"]]
    d["schedule"], d["refine"] = trial, {}
    d["data"]["star"] = os.fspath(star)
    d["data"]["particle_options"] = {**d["data"].get("particle_options", {}), "datadir": os.fspath(datadir),
                                     "passthrough": None}
    with tempfile.TemporaryDirectory(prefix="gmmplat-estimate-") as tmp:
        trainer = Trainer(RunConfig.from_dict(d), Path(tmp) / "run", device=device, progress=False, cache_mb=64.0)
        trainer.run()
    return {i: s for i, _, s in trainer.stage_seconds}


def calibrated_estimate(config: RunConfig, samples: dict[int, str], n_items: int, n_sym: int, *,
                        datadir: str | os.PathLike, device: str = "cpu") -> Estimate:
    """Train the trial schedule of ``config`` on each sample (particles -> STAR file; the smallest only
    warms the process up, the two largest are timed; image paths relative to ``datadir``) and fit each
    stage's seconds as ``a + b · items`` to scale it to ``n_items``; the seconds by part."""
    full, trial = trial_schedule(config)
    sizes = sorted(samples)
    times = {k: _trial(config, trial, samples[k], os.fspath(datadir), device) for k in sizes}
    k1, k2 = sizes[-2], sizes[-1]

    def x(spec, items):  # what a stage's work grows with
        return refined_items(items) if spec["kind"] == "refine_latent" else items

    fitted = {}  # (kind, round) -> (a, b, spec sampled)
    for i, spec in enumerate(trial):
        t1, t2 = times[k1].get(i, 0.0), times[k2].get(i, 0.0)
        x1, x2 = x(spec, k1 * n_sym), x(spec, k2 * n_sym)
        b = max(0.0, (t2 - t1) / (x2 - x1))
        fitted.setdefault((spec["kind"], spec.get("round")), (max(0.0, t2 - b * x2), b, spec))
    parts: dict[str, float] = {}
    names = {"train": "rounds", "fit_decoders": "cycles", "refine_latent": "refinement", "refine_poses": "poses"}
    for spec in full:
        kind = spec["kind"]
        if (kind, spec.get("round")) not in fitted:
            continue
        a, b, sampled = fitted[(kind, spec.get("round"))]
        value = a + b * x(spec, n_items)
        if kind == "train":
            value *= config.rounds[spec["round"]].epochs
        elif kind == "fit_decoders":
            value *= spec.get("epochs") or config.rounds[spec["round"]].epochs
        elif kind == "refine_latent":
            value = a + b * x(spec, n_items) * spec["anchors"] / sampled["anchors"]
        part = names.get(kind, "other")
        parts[part] = parts.get(part, 0.0) + value
    dev = load_coefficients()["devices"].get(device.split(":")[0], {})
    parts = {"fixed": float(dev.get("fixed_s", 0.0)), **parts}
    return Estimate(sum(parts.values()), float("nan"), parts)
