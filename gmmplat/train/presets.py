"""Ready-made run configurations, so that a user need not write JSON.

``preset(name, neutral, domain=None, epochs=None, ...) -> RunConfig``; ``domain`` is a mask name,
several separated by commas, or a list of names; names:

* ``rigid`` (needs ``domain``): one rigid-body decoder moving the Gaussians of mask
  ``domain`` (one body per mask when several are given); one round at low resolution (15 Å or
  Nyquist, whichever is coarser).
* ``hierarchical``: the paper's two rounds: the small-GMM decoder (positions only) through a
  constant transition matrix at 10 Å, then the transition trains at full resolution; then three
  refinement cycles (:data:`HIERARCHICAL_REFINE`).  Needs ``small_params`` and ``transition`` in
  the neutral GMM.
* ``free``: one free decoder moving every Gaussian (positions only, with a smoothed second output:
  :data:`FREE_PRESET_DECODER_OPTIONS`), with an elastic network (:data:`ELASTIC_NETWORK`) and the
  Cα-backbone regularizer when the GMM holds a bond graph (``bonds`` extra); low resolution, then
  full resolution; then the ``hierarchical`` preset's refinement cycles (:data:`FREE_REFINE`).
* ``multi`` (needs ``domain``): a rigid decoder for ``domain`` (one body per mask) at 15 Å, then a
  bond-regularized free decoder (positions only) for the rest (the core: outside every body) added
  at full resolution; both decoders share the encoder (the paper's coupled analysis).  A moving
  element whose motion barely shows in low-resolution density (the ``coupled`` hairpin sliding
  along its helix axes) is better given as a body of its own than left to the free core: hairpin
  amplitude ratio 0.88 / 0.85 vs 0.69 / 0.68, morph 0.30 / 0.35 vs 0.42 / 0.46 Å (seeds 0 / 1;
  docs/training.md, "Decoded motion size").

``epochs`` replaces the rounds' epoch counts (one number for every round, or one per
round); ``gmmplat train --print-config`` shows the result.  The JSON of any preset
(``RunConfig.to_json()``) is a starting point for a hand-written config.
"""
from __future__ import annotations

from typing import Callable

from ..gmm import GMM
from ..latent_refine import DEFAULT_ANCHORS, DEFAULT_HIGH_RES_ANGSTROM
from ..errors import ConfigError
from .config import RunConfig

__all__ = ["PRESETS", "preset"]

LOW_RES_ANGSTROM = 15.0
#: The presets' loss.  On the sample datasets (SNR 0.05) it recovers the conformation better
#: than the FRC (|Spearman| 0.92 vs 0.88 on bend, 0.92 vs 0.90 on hinge: docs/benchmarks.md):
#: unlike the FRC it weighs the rings by how much of the observed power the prediction explains.
LOSS = {"kind": "weighted_l2", "options": {"fit_scale": True}}


#: The band of the encoder and the first round of the deformable presets (``hierarchical``, ``free``).
#: A bend with a twist of a helix bundle shows partly only at 10–15 Å (helices ~10 Å apart): at
#: 15 Å the decoded motion is 0.85 of the true one on ``bend`` and the morph 1.00 Å from the true
#: frames, at 10 Å 0.92 / 0.97 and 0.79 / 0.70 Å (seeds 0 / 1; the free preset 0.80 / 0.80 ->
#: 0.86 / 0.83 and 1.26 / 1.28 -> 1.11 / 1.08 Å), for about 1.1x the training time
#: (docs/benchmarks.md, "Decoded motion size").
DEFORM_LOW_RES_ANGSTROM = 10.0


def _low_res(neutral: GMM, band: float = LOW_RES_ANGSTROM) -> float:
    return max(band, 2.0 * float(neutral.pixel_size_angstrom))


#: Weight of the Cα-backbone regularizer in the ``free`` and ``multi`` presets.  At 1 it holds the
#: decoded motion back: on ``bend`` the free decoder's amplitude ratio is 0.53 at weight 1 and
#: 0.67 at 0.1; on ``coupled`` the hairpin's 0.09 and 0.16 (with 6 epochs in round 2: 0.23 at 0.1,
#: 0.17 without the regularizer); docs/benchmarks.md, "Decoded motion size".
BACKBONE_WEIGHT = 0.1

#: Options of the ``free`` and ``multi`` presets' free decoders: positions only.  With amplitudes
#: free too, the decoder explains a motion by taking density away at one end of a moving element and
#: adding it at the other (the first thing gradient descent finds, and nearly the same image at low
#: resolution) instead of moving the Gaussians: on ``coupled`` the hairpin's amplitude ratio is 0.20
#: with amplitudes and 0.59 without, on ``bend`` 0.73 and 0.81 (docs/benchmarks.md, "Decoded motion
#: size").  Write a config with ``move_amplitude: true`` for compositional changes.
FREE_DECODER_OPTIONS = {"move_amplitude": False}


def _regularizers(neutral: GMM, weight: float = BACKBONE_WEIGHT) -> list:
    return [{"kind": "ca_backbone", "weight": weight}] if "bonds" in neutral.extras else []


#: Elastic network of the ``free`` preset (:mod:`gmmplat.regularizers.elastic`): distances between
#: Gaussians closer than 10 Å held near the batch's mean distances (``reference: batch``), changes up
#: to 1 Å free, weight 0.3 (Å²).  Bonds and angles do not stop a helix from sliding along its own
#: screw, which changes the 6–10 Å density little; the network holds it to its neighbours.  The bend
#: of ``bend`` changes these distances by 0.49 Å RMS at its ends, so a plain network (no tolerance)
#: helps only while weak (weight 0.003: 0.79 Å on the true latent, 0.1: 1.62 Å); with the 1 Å
#: tolerance any weight from 0.03 to 1 gives 0.73 Å.  Held to the neutral GMM's distances instead of
#: the batch's, it pulls every conformation toward the neutral GMM, which is fitted to the consensus
#: map (an average of the states) and has the distances of none where the structure moves: on the
#: true latent 0.73 Å with the neutral's distances, 0.53 Å with the batch's.  Not in ``multi`` or
#: ``hierarchical``: on ``coupled``'s core it moves the scores within run-to-run differences, on
#: ``bend`` hierarchical it makes the morph worse (docs/benchmarks.md, "Elastic network").  Needs no
#: atomic model: a GMM built from a map gets it too.
ELASTIC_NETWORK = {"kind": "elastic_network", "weight": 0.3,
                   "options": {"cutoff_angstrom": 10.0, "tolerance_angstrom": 1.0, "reference": "batch"}}


def _elastic_network(subset: str | None) -> dict:
    spec = {**ELASTIC_NETWORK, "options": dict(ELASTIC_NETWORK["options"])}
    if subset is not None:
        spec["options"]["subset"] = subset
    return spec


def _need_domains(neutral: GMM, domain, name) -> list[str]:
    """Mask names of ``domain``: one name, several separated by commas, or a list of names."""
    known = ", ".join(sorted(neutral.masks())) or "none"
    names = [d.strip() for d in (domain.split(",") if isinstance(domain, str) else (domain or []))]
    names = [d for d in names if d]
    if not names:
        raise ConfigError(f"preset {name!r} needs --domain NAME (masks in the GMM: {known})")
    for d in names:
        if d not in neutral.masks():
            raise ConfigError(f"preset {name!r}: no mask {d!r} in the GMM; known: {known}")
    if len(set(names)) != len(names):
        raise ConfigError(f"preset {name!r}: a mask is named twice in --domain {','.join(names)}")
    return names


#: Latent refinement of every preset (:mod:`gmmplat.latent_refine`): 24 anchors, likelihood on the
#: band to 10 Å.  On the sample datasets (SNR 0.05) |Spearman| goes from 0.926 / 0.944 / 0.921 to
#: 0.950 / 0.953 / 0.941 (``hinge`` rigid, ``bend`` hierarchical, ``coupled`` multi; oracle 0.961 /
#: 0.967 / 0.959) for 11–18 s per run of 3000 particles on one CPU thread (docs/benchmarks.md, "Latent
#: refinement").  32 anchors or an 8 Å band gain no more than 0.005; 16 anchors or 15 Å lose up to 0.01.
REFINE = {"anchors": DEFAULT_ANCHORS, "high_res_angstrom": DEFAULT_HIGH_RES_ANGSTROM, "temperature": 1.0}


def _base(neutral: GMM, band: float = LOW_RES_ANGSTROM, **kw) -> dict:
    """Shared settings: the gradient encoder (as EMAN2) on a fixed low-resolution band, so its
    input does not change when a later round moves the loss to full resolution; every round
    uses the ring-normalised L2 loss with a fitted scale (:data:`LOSS`)."""
    d = {"latent_dim": 4, "latent_noise_std": 0.05, "latent_penalty": 0.01, "validation_fraction": 0.1,
         "encoder": {"kind": "gradient", "options": {"input_res_angstrom": _low_res(neutral, band)}},
         "refine": dict(REFINE)}
    d.update(kw)
    for r in d["rounds"]:
        r.setdefault("loss", dict(LOSS))
    return d


#: ``latent_shrink`` of the ``rigid`` preset.  Without it the latent dimensions the domain's motion
#: does not need fill with nuisance (on ``hinge`` 3 of 4 principal components with 0.6× the spread
#: of the motion's), and the rigid decoder follows them: |Spearman| 0.891 / 0.907 (seeds 0 / 1),
#: morph 0.47 Å; with 0.03 they shrink to under 0.1× and |Spearman| is 0.922 / 0.927, morph
#: 0.31 / 0.25 Å (oracle 0.961, 0.22 Å).  Not in the other presets: it shrinks their deformations
#: (``bend`` free amplitude ratio 0.81 -> 0.67, hierarchical 0.85 -> 0.71, the ``coupled`` hairpin
#: 0.59 -> 0.43); docs/benchmarks.md, "Decoded motion size".
RIGID_LATENT_SHRINK = 0.03


def rigid(neutral: GMM, domain=None) -> dict:
    domains = _need_domains(neutral, domain, "rigid")
    lo = _low_res(neutral)
    return _base(
        neutral,
        latent_shrink=RIGID_LATENT_SHRINK,
        decoders={"domain": {"kind": "rigid", "options": {"domains": domains}}},
        rounds=[{"name": "rigid", "decoders": ["domain"], "epochs": 20, "learning_rate": 1e-3, "batch_size": 32,
                 "high_res_angstrom": lo}],
    )


#: Options of the ``hierarchical`` preset's decoder: positions only, as the free decoders
#: (:data:`FREE_DECODER_OPTIONS`), and round 1 at lr 3e-3.  Trained on the true latent (the decoder
#: limit, ``gmmplat train --truth-latent``; docs/benchmarks.md, "Decoder limit"), the ``bend`` morph is
#: 0.66 Å with amplitudes free at lr 1e-3, 0.58 Å positions only, 0.50 Å positions only at lr 3e-3 (the
#: same on the oracle's posterior-mean latent: 0.69, 0.58, 0.50 Å; 2× the oracle's morph: 0.53 Å),
#: for the same training time.  Trained with the encoder, the runs' morph moves within run-to-run
#: differences (refined latent, seeds 0 / 1: 0.87 / 0.78 -> 0.83 / 0.80 Å; amplitude ratio 0.87 / 0.91 ->
#: 0.92 / 0.95): the latent limits them (docs/training.md, "Decoded motion size").
HIERARCHICAL_DECODER_OPTIONS = {"move_amplitude": False}
HIERARCHICAL_LEARNING_RATE = 3e-3

#: What the cycles of the deformable presets do about real data (docs/training.md, "Real data";
#: docs/benchmarks.md, "Real data"): junk, fitted at under half the median scale, is left out of the
#: decoders' training and the anchors; poses are refined under the decoded GMM, 20 steps, shrunk to
#: the errors' estimated distribution (exact poses stay exact).
REAL_DATA_REFINE = {"junk_scale": 0.5, "pose_steps": 20}

#: Refinement of the ``hierarchical`` preset: after the rounds, three refinement cycles
#: (:mod:`gmmplat.train.cycles`), each refining the latent on anchors stretched 1.5× about their
#: mean (12 in the first two cycles, the refinement's 24 in the last, whose latent is the run's),
#: keeping its leading principal axes and training the decoder 7 + 2 more epochs on it.  On ``bend``
#: (notebook 02: rounds of 5 + 1 epochs, then the cycles) the morph goes from 0.83 / 0.80 Å (12 + 3
#: epochs, refinement without cycles; seeds 0 / 1) to 0.478–0.515 Å over seeds 0–4 (mean 0.498; two
#: threads, seed 0: 0.509–0.513 Å; with the morph's reference at the plain median, as the numbers
#: below, 0.485–0.521 and 0.510–0.544 Å), 2× the oracle's being 0.53 Å, |Spearman| from 0.954 / 0.955 to
#: 0.960–0.962 (oracle 0.967), training in about 1.4× the time of the preset when the time
#: bound was set (12 + 3 epochs at 15 Å, no refinement).  Cycles of 4 + 1 epochs after 6 + 1, the
#: preset before the projector's direct factors and the allocator settings made room for more,
#: morph to a mean of 0.537 Å over the same seeds, 6 + 2 to 0.515 Å; 12 anchors in the last cycle
#: too gather the latent on them and move the morph's reference point (0.57–0.64 Å on two threads).
#: docs/benchmarks.md, "Refinement cycles".
HIERARCHICAL_REFINE = {**REFINE, "cycles": 3, "cycle_stretch": 1.5, "cycle_epochs": [7, 2], "restart": False,
                       "cycle_anchors": 12, **REAL_DATA_REFINE}


def hierarchical(neutral: GMM, domain=None) -> dict:
    if "small_params" not in neutral.extras or "transition" not in neutral.extras:
        raise ConfigError("preset 'hierarchical' needs a GMM with a small GMM and transition matrix "
                          "(build it with the small GMM option)")
    lo = _low_res(neutral, DEFORM_LOW_RES_ANGSTROM)
    return _base(
        neutral, band=DEFORM_LOW_RES_ANGSTROM, refine=dict(HIERARCHICAL_REFINE),
        decoders={"hier": {"kind": "hierarchical", "options": dict(HIERARCHICAL_DECODER_OPTIONS)}},
        rounds=[
            {"name": "small GMM, low resolution", "decoders": ["hier"], "epochs": 20,
             "learning_rate": HIERARCHICAL_LEARNING_RATE,
             "batch_size": 32, "high_res_angstrom": lo},
            {"name": "transition, full resolution", "decoders": ["hier"], "epochs": 5, "learning_rate": 2e-4,
             "batch_size": 32, "high_res_angstrom": None,
             "decoder_options": {"hier": {"train_transition": True}}},
        ],
    )


#: Options of the ``free`` preset's decoder: positions only (:data:`FREE_DECODER_OPTIONS`) and a
#: second output smoothed over 6 Å (``coarse_angstrom``, :mod:`gmmplat.decoders.free`), so that
#: neighbourhoods move together while gradient descent grows the motion.  On ``bend``, trained on the
#: true latent with the network's batch reference: 0.53 Å without, 0.49 Å at 6 Å (0.49 / 0.51 Å at
#: 4 / 10 Å); with the encoder and one refinement, 0.68 -> 0.60 Å (docs/benchmarks.md, "Elastic
#: network").  The unsmoothed output counts 0.3 (``fine_scale``): a Gaussian moves apart from its
#: neighbourhood at 0.3 times the pace, and a noisy latent's blur of neighbouring states lands less
#: in single Gaussians.  With the encoder and the cycles (:data:`FREE_REFINE`) that takes ``bend``
#: from 0.537–0.570 Å (seeds 0–4, mean 0.553) to 0.507–0.520 Å (mean 0.512); 0.1 / 0.5 morph to a
#: similar mean with a wider spread (docs/benchmarks.md, "The unsmoothed output's scale").  Not in
#: ``multi``'s core, whose targets are met without.
FREE_PRESET_DECODER_OPTIONS = {**FREE_DECODER_OPTIONS, "coarse_angstrom": 6.0, "fine_scale": 0.3}

#: Refinement of the ``free`` preset: the ``hierarchical`` preset's three cycles
#: (:data:`HIERARCHICAL_REFINE`; stretch 1.5, 12 anchors in the first two), each training the
#: decoder 3 epochs at the first round's band and none at full resolution (``cycle_epochs`` [3, 0]).
#: On ``bend`` (notebook 04: rounds of 6 + 1 epochs, then the cycles) the morph goes from 0.60 Å
#: (12 + 6 epochs, one refinement) to 0.479–0.506 Å (seeds 0–4, mean 0.493, with
#: :data:`FREE_PRESET_DECODER_OPTIONS`; 0.507–0.520 Å with the morph's reference at the plain
#: median; 2× the oracle's: 0.528 Å), |Spearman| from 0.957 to 0.960
#: (oracle 0.967).  Cycles of 4 + 1 epochs after rounds of 6 + 3 morph no closer and cost more
#: (docs/benchmarks.md, "Elastic network").
FREE_REFINE = {**HIERARCHICAL_REFINE, "cycle_epochs": [3, 0]}


def free(neutral: GMM, domain=None) -> dict:
    lo = _low_res(neutral, DEFORM_LOW_RES_ANGSTROM)
    subset = None if not domain else ",".join(_need_domains(neutral, domain, "free"))
    regs = _regularizers(neutral) + [_elastic_network(subset)]
    return _base(
        neutral, band=DEFORM_LOW_RES_ANGSTROM, refine=dict(FREE_REFINE),
        decoders={"free": {"kind": "free", "subset": subset, "options": dict(FREE_PRESET_DECODER_OPTIONS)}},
        rounds=[
            {"name": "low resolution", "decoders": ["free"], "epochs": 20, "learning_rate": 1e-3, "batch_size": 32,
             "high_res_angstrom": lo, "regularizers": regs},
            # 10 epochs: the free decoder's motion is still growing after 5 (docs/benchmarks.md)
            {"name": "full resolution", "decoders": ["free"], "epochs": 10, "learning_rate": 2e-4, "batch_size": 32,
             "high_res_angstrom": None, "regularizers": regs},
        ],
    )


def multi(neutral: GMM, domain=None) -> dict:
    domains = _need_domains(neutral, domain, "multi")
    lo = _low_res(neutral)
    regs = _regularizers(neutral)
    return _base(
        neutral,
        decoders={"domain": {"kind": "rigid", "options": {"domains": domains}},
                  "core": {"kind": "free", "subset": "!" + ",".join(domains), "options": dict(FREE_DECODER_OPTIONS)}},
        rounds=[
            {"name": "rigid domain", "decoders": ["domain"], "epochs": 20, "learning_rate": 1e-3, "batch_size": 32,
             "high_res_angstrom": lo},
            # lr 1e-3: the new decoder starts from zero (2e-4 leaves the core's motion smaller and the
            # latent worse on `coupled`: |Spearman| 0.90 vs 0.92, docs/benchmarks.md)
            # 10 epochs: the core's motion is still growing after 5 (hairpin amplitude 0.16 after 3 epochs,
            # 0.23 after 6 on `coupled`, docs/benchmarks.md)
            {"name": "core, full resolution", "decoders": ["domain", "core"], "epochs": 10, "learning_rate": 1e-3,
             "batch_size": 32, "high_res_angstrom": None, "regularizers": regs},
        ],
    )


PRESETS: dict[str, Callable] = {"rigid": rigid, "hierarchical": hierarchical, "free": free, "multi": multi}


def preset(name: str, neutral: GMM, domain: str | None = None, epochs: int | list | None = None, seed: int = 0,
           latent_dim: int | None = None, batch_size: int | None = None) -> RunConfig:
    """A :class:`RunConfig` for preset ``name`` fitted to ``neutral`` (its pixel size, masks, extras)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    d = PRESETS[name](neutral, domain)
    d["seed"] = int(seed)
    if latent_dim is not None:
        d["latent_dim"] = int(latent_dim)
    if epochs is not None:
        counts = [int(epochs)] * len(d["rounds"]) if isinstance(epochs, int) else [int(e) for e in epochs]
        if len(counts) != len(d["rounds"]):
            raise ConfigError(f"preset {name!r} has {len(d['rounds'])} round(s) but {len(counts)} epoch counts "
                              "were given")
        for r, e in zip(d["rounds"], counts):
            r["epochs"] = e
    for r in d["rounds"]:
        if batch_size is not None:
            r["batch_size"] = int(batch_size)
    return RunConfig.from_dict(d)
