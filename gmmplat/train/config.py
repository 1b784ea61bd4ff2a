"""Run configuration: one encoder, named decoders, and a list of training rounds.

A run is described by a JSON file (``gmmplat train --config run.json``), e.g.::

    {
      "latent_dim": 4, "latent_noise_std": 0.1, "latent_penalty": 0.0,
      "validation_fraction": 0.1, "projector": "separable",
      "encoder": {"kind": "image", "options": {"input_res_angstrom": 10}},
      "decoders": {
        "domain": {"kind": "rigid", "options": {"domains": ["hinge"]}},
        "core":   {"kind": "free", "subset": "!hinge"}
      },
      "rounds": [
        {"name": "rigid", "decoders": ["domain"], "epochs": 20, "high_res_angstrom": 15},
        {"name": "core", "decoders": ["domain", "core"], "train": ["encoder", "core"],
         "epochs": 10, "regularizers": [{"kind": "ca_backbone", "weight": 1.0}]}
      ]
    }

Every section is a dataclass checked on construction (:class:`ConfigError`, one
line naming the place: ``rounds[1].epochs: must be >= 1``).  Unknown keys are
refused.  ``seed`` and the data section (STAR, GMM, symmetry, contrast) are
part of the configuration: a run folder can only be resumed with the same.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..decoders import DECODERS
from ..errors import ConfigError, InputError
from ..refine.latent import DEFAULT_HIGH_RES_ANGSTROM

__all__ = ["StepSpec", "DecoderSpec", "RegularizerSpec", "RoundConfig", "DataConfig", "RefineConfig", "RunConfig",
           "load_config", "config_hash"]


def _check_keys(d: Any, cls, where: str, legacy: tuple = ()) -> dict:
    """``d`` is an object whose keys are fields of ``cls`` (or older keys still read, ``legacy``);
    returns it with the fields' defaults filled in."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)} | set(legacy)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return {**_defaults(cls), **d}


def _defaults(cls) -> dict:
    """The defaults of a config dataclass's fields, as JSON values (the one place they are written)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            out[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return out


def _flag(value, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _fraction(value, where: str) -> float:
    value = _number(value, where, 0.0)
    if value >= 1:
        raise ConfigError(f"{where}: a share of the median from 0 (off) to below 1, got {value!r}")
    return float(value)


def _number(value, where: str, minimum: float | None = None, integer: bool = False, allow_none: bool = False,
            strict_min: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if integer and int(value) != value:
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if minimum is not None and (value < minimum or (strict_min and value == minimum)):
        raise ConfigError(f"{where}: must be {'>' if strict_min else '>='} {minimum:g}, got {value!r}")
    return int(value) if integer else float(value)


def _options(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: options must be a JSON object")
    return dict(value)


def _names(value, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of names")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: names repeat")
    return list(value)


def _band_or_refinement(value, where: str):
    """``"refinement"`` (the latent refinement's band), null (Nyquist) or a resolution in Å."""
    if value == "refinement":
        return value
    return _number(value, where, 0.0, allow_none=True, strict_min=True)


def _schedule(value, where: str) -> list | None:
    """A list of stage specs ``{"kind": name, ...}`` (checked against the stages when the run is built)."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: a list of stages (objects with a kind), or null, got {value!r}")
    for i, spec in enumerate(value):
        if not isinstance(spec, dict) or not isinstance(spec.get("kind"), str):
            raise ConfigError(f"{where}[{i}]: an object with a kind (a stage name), got {spec!r}")
    return [dict(s) for s in value]


def _step(d, cls, where: str, what: str) -> dict:
    """A step's object with defaults filled in: ``kind`` a registry name, ``options`` an object."""
    d = _check_keys(d, cls, where)
    if not isinstance(d.get("kind"), str) or not d["kind"]:
        raise ConfigError(f"{where}.kind: {what} name is required")
    return {**d, "options": _options(d["options"], f"{where}.options")}


@dataclass
class StepSpec:
    """A registry step: ``kind`` (registry name) and its constructor ``options``."""

    kind: str
    options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d, where: str) -> "StepSpec":
        d = _step(d, cls, where, "a step")
        return cls(d["kind"], d["options"])


@dataclass
class DecoderSpec:
    """A decoder: ``kind``, ``subset`` and ``options``.

    ``subset``: None (every Gaussian), ``"NAME"`` (the Gaussians of mask
    ``mask__NAME`` of the neutral GMM) or ``"!NAME"`` (all the others).
    """

    kind: str
    subset: str | None = None
    options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d, where: str) -> "DecoderSpec":
        d = _step(d, cls, where, "a decoder")
        subset = d["subset"]
        if subset is not None and (not isinstance(subset, str) or subset.lstrip("!") == ""):
            raise ConfigError(f"{where}.subset: expected null, a mask name or '!name'")
        return cls(d["kind"], subset, d["options"])


@dataclass
class RegularizerSpec:
    """A regularizer added to the loss: ``kind``, ``weight`` and ``options``."""

    kind: str
    weight: float = 1.0
    options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d, where: str) -> "RegularizerSpec":
        d = _step(d, cls, where, "a regularizer")
        return cls(d["kind"], _number(d["weight"], f"{where}.weight", 0.0), d["options"])


@dataclass
class RoundConfig:
    """One training round.

    Attributes:
        epochs, learning_rate (Adam), batch_size.
        decoders: names of the decoders that exist in this round (a later round
            may add decoders; none may be removed).
        train: modules that train (``"encoder"`` and decoder names); None = all
            of this round's; the others are frozen.
        freeze: glob patterns of further parameters to freeze, over names
            ``encoder.<param>`` and ``<decoder>.<param>`` (e.g. ``"core.mlp.0.*"``).
        high_res_angstrom / low_res_angstrom: the loss band (None = Nyquist / 0).
        loss: the loss step; regularizers: added with their weights.
        decoder_options: per decoder name, the round options it declares (``Decoder.round_options``),
            e.g. ``{"hier": {"train_transition": true}}`` (a hierarchical decoder's transition
            matrix trains: round 2 of the paper).  The older round key ``"train_transition": true``
            is read as that option for every decoder of the round that declares it.
    """

    epochs: int
    decoders: list = field(default_factory=list)
    name: str = ""
    learning_rate: float = 1e-3
    batch_size: int = 32
    train: list | None = None
    freeze: list = field(default_factory=list)
    high_res_angstrom: float | None = None
    low_res_angstrom: float | None = None
    loss: StepSpec = field(default_factory=lambda: StepSpec("frc"))
    regularizers: list = field(default_factory=list)
    decoder_options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d, where: str, decoder_kinds: dict | None = None) -> "RoundConfig":
        """``decoder_kinds``: decoder name -> registry name (to read the older ``train_transition`` key)."""
        d = _check_keys(d, cls, where, legacy=("train_transition",))
        if "epochs" not in d:
            raise ConfigError(f"{where}.epochs: required")
        train = d["train"]
        decoder_options = d["decoder_options"]
        if not isinstance(decoder_options, dict):
            raise ConfigError(f"{where}.decoder_options: expected an object of decoder name -> options")
        decoder_options = {str(k): _options(v, f"{where}.decoder_options.{k}") for k, v in decoder_options.items()}
        transition = d.get("train_transition", False)
        if not isinstance(transition, bool):
            raise ConfigError(f"{where}.train_transition: expected true or false")
        for n in d["decoders"] if transition else []:
            kind = (decoder_kinds or {}).get(n)
            if kind in DECODERS and "train_transition" in DECODERS.get(kind).round_options:
                decoder_options.setdefault(n, {}).setdefault("train_transition", True)
        name = d["name"]
        if not isinstance(name, str):
            raise ConfigError(f"{where}.name: expected a string")
        regs = d["regularizers"]
        if not isinstance(regs, list):
            raise ConfigError(f"{where}.regularizers: expected a list")
        freeze = d["freeze"]
        if not isinstance(freeze, list) or not all(isinstance(p, str) for p in freeze):
            raise ConfigError(f"{where}.freeze: expected a list of patterns")
        r = cls(
            epochs=_number(d["epochs"], f"{where}.epochs", 1, integer=True),
            decoders=_names(d["decoders"], f"{where}.decoders"),
            name=name,
            learning_rate=_number(d["learning_rate"], f"{where}.learning_rate", 0.0, strict_min=True),
            batch_size=_number(d["batch_size"], f"{where}.batch_size", 1, integer=True),
            train=None if train is None else _names(train, f"{where}.train"),
            freeze=list(freeze),
            high_res_angstrom=_number(d["high_res_angstrom"], f"{where}.high_res_angstrom", 0.0,
                                      allow_none=True, strict_min=True),
            low_res_angstrom=_number(d["low_res_angstrom"], f"{where}.low_res_angstrom", 0.0,
                                     allow_none=True, strict_min=True),
            loss=StepSpec.from_dict(d["loss"], f"{where}.loss"),
            regularizers=[RegularizerSpec.from_dict(x, f"{where}.regularizers[{i}]") for i, x in enumerate(regs)],
            decoder_options=decoder_options,
        )
        if not r.decoders:
            raise ConfigError(f"{where}.decoders: at least one decoder is needed")
        stray = [n for n in r.decoder_options if n not in r.decoders]
        if stray:
            raise ConfigError(f"{where}.decoder_options: {', '.join(stray)} is not a decoder of this round")
        if r.low_res_angstrom is not None and r.high_res_angstrom is not None and (
            r.low_res_angstrom <= r.high_res_angstrom
        ):
            raise ConfigError(f"{where}: low_res_angstrom {r.low_res_angstrom:g} must be larger than "
                              f"high_res_angstrom {r.high_res_angstrom:g}")
        return r

    def trained_modules(self) -> list[str]:
        return ["encoder", *self.decoders] if self.train is None else list(self.train)


@dataclass
class DataConfig:
    """What the run was trained on (absolute paths; filled from the command line)."""

    star: str = ""
    gmm: str = ""
    symmetry: str = "C1"
    invert_contrast: bool = False
    #: options of the particle reader: passthrough, datadir, amplitude_contrast, voltage_kv, cs_mm
    particle_options: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d, where: str = "data") -> "DataConfig":
        d = _check_keys(d, cls, where)
        options = d.get("particle_options") or {}
        known = {"passthrough", "datadir", "amplitude_contrast", "voltage_kv", "cs_mm"}
        if not isinstance(options, dict) or set(options) - known:
            raise ConfigError(f"{where}.particle_options: expected an object with keys among {', '.join(sorted(known))}")
        return cls(str(d["star"]), str(d["gmm"]), str(d["symmetry"]).upper(), bool(d["invert_contrast"]),
                   dict(options))

    def source(self):
        """The particles as a :class:`gmmplat.io.particles.ParticleSource` (STAR or cryoSPARC .cs)."""
        from ..io.particles import ParticleSource

        return ParticleSource.from_dict({**self.particle_options, "path": self.star})


@dataclass
class RefineConfig:
    """Latent refinement after training (:mod:`gmmplat.refine.latent`): ``anchors`` k-means centres of
    the encoder's latent points (0: off; else at least 2), the band's ``high_res_angstrom`` (null:
    Nyquist), the likelihood's ``temperature`` (1: exact).

    Refinement cycles (:mod:`gmmplat.train.schedule`; need ``anchors``): ``cycles`` times, the latent is
    refined with the anchors stretched by ``cycle_stretch`` (≥ 1) about their mean, projected onto
    its leading principal axes (``components``: a number, or null for the Kaiser rule) and the
    decoders are trained on it, held fixed, with the rounds' settings and
    ``cycle_epochs`` epochs per round (null: the rounds' own; 0 leaves a round out): afresh when
    ``restart``, else continuing from the previous cycle's (the trained run's in the first).
    ``cycle_anchors``: the anchors of every cycle's refinement but the last (at least 2; null:
    ``anchors``); the last cycle, whose latent is the run's, uses ``anchors``.  ``junk_scale`` (0 to 1;
    0: off): each cycle leaves out of the decoders' training, and of the next refinement's anchors,
    the particles whose image the decoded GMM fits at under this share of the median fitted scale
    (:func:`gmmplat.refine.latent.junk_mask`: empty ice, fragments).  ``pose_steps`` (0: off): after the latent
    refinement of each cycle but the last (whose latent is the run's), every particle's pose and origin are refined under its decoded GMM for
    that many steps (:mod:`gmmplat.refine.poses`: a weak Gaussian prior of ``pose_sigma_deg`` and
    ``pose_sigma_angstrom`` about the stated pose, on the band to ``pose_high_res_angstrom`` ("refinement":
    the latent refinement's; null: Nyquist), then each estimate shrunk to its posterior mean
    under the error distribution estimated from all); the decoders then train, and the next
    refinement runs, at the corrected poses.  ``pose_samples`` (≥ 1): with ``pose_steps``, the last
    cycle's refinement averages each anchor's likelihood over that many poses drawn with the spread the
    pose refinement left (docs/training.md, "Real data"); without, it has no effect.  ``pose_cycles``
    (null: every cycle but the last): the poses are refined only in this many cycles, those just
    before the last (all of them when there are fewer).
    ``last_cycle_epochs`` / ``last_cycle_restart``: the last cycle's decoder epochs per round and
    whether its decoders start afresh (null: ``cycle_epochs`` / ``restart``); the decoders the run
    keeps train there, on the run's own latent."""

    anchors: int = 0
    high_res_angstrom: float | None = DEFAULT_HIGH_RES_ANGSTROM
    temperature: float = 1.0
    cycles: int = 0
    cycle_stretch: float = 1.5
    components: int | None = None
    cycle_epochs: list | None = None
    restart: bool = True
    cycle_anchors: int | None = None
    junk_scale: float = 0.0
    pose_steps: int = 0
    pose_sigma_deg: float = 20.0
    pose_sigma_angstrom: float = 5.0
    pose_high_res_angstrom: float | str | None = "refinement"
    pose_samples: int = 1
    pose_cycles: int | None = None
    last_cycle_epochs: list | None = None
    last_cycle_restart: bool | None = None

    @classmethod
    def from_dict(cls, d, where: str = "refine") -> "RefineConfig":
        d = _check_keys(d, cls, where)
        anchors = _number(d["anchors"], f"{where}.anchors", 0, integer=True)
        if anchors == 1:
            raise ConfigError(f"{where}.anchors: 0 (no refinement) or at least 2, got 1")
        cycles = _number(d["cycles"], f"{where}.cycles", 0, integer=True)
        if cycles and not anchors:
            raise ConfigError(f"{where}.cycles: refinement cycles need anchors (at least 2), got anchors 0")
        pose_samples = _number(d["pose_samples"], f"{where}.pose_samples", 1, integer=True)
        for key in ("junk_scale", "pose_steps", "pose_cycles", "last_cycle_epochs", "last_cycle_restart"):
            if d[key] not in (None, 0) and not cycles:
                raise ConfigError(f"{where}.{key}: works in the refinement cycles; set {where}.cycles (at least 1)")
        epochs = _epochs_per_round(d["cycle_epochs"], f"{where}.cycle_epochs")
        last_epochs = _epochs_per_round(d["last_cycle_epochs"], f"{where}.last_cycle_epochs")
        last_restart = None if d["last_cycle_restart"] is None else _flag(d["last_cycle_restart"],
                                                                          f"{where}.last_cycle_restart")
        return cls(anchors, _number(d["high_res_angstrom"], f"{where}.high_res_angstrom", 0.0, allow_none=True,
                                    strict_min=True),
                   _number(d["temperature"], f"{where}.temperature", 0.0, strict_min=True), cycles,
                   _number(d["cycle_stretch"], f"{where}.cycle_stretch", 1.0),
                   _number(d["components"], f"{where}.components", 1, integer=True, allow_none=True),
                   epochs, _flag(d["restart"], f"{where}.restart"),
                   _number(d["cycle_anchors"], f"{where}.cycle_anchors", 2, integer=True, allow_none=True),
                   _fraction(d["junk_scale"], f"{where}.junk_scale"),
                   _number(d["pose_steps"], f"{where}.pose_steps", 0, integer=True),
                   _number(d["pose_sigma_deg"], f"{where}.pose_sigma_deg", 0.0, strict_min=True),
                   _number(d["pose_sigma_angstrom"], f"{where}.pose_sigma_angstrom", 0.0, strict_min=True),
                   _band_or_refinement(d["pose_high_res_angstrom"], f"{where}.pose_high_res_angstrom"), pose_samples,
                   _number(d["pose_cycles"], f"{where}.pose_cycles", 1, integer=True, allow_none=True),
                   last_epochs, last_restart)


def _epochs_per_round(epochs, where: str) -> list | None:
    """A list of epochs per round (or None), at least one of them above 0 (ConfigError naming ``where``)."""
    if epochs is None:
        return None
    if not isinstance(epochs, list) or not epochs:
        raise ConfigError(f"{where}: a list of epochs per round (or null), got {epochs!r}")
    epochs = [_number(e, f"{where}[{i}]", 0, integer=True) for i, e in enumerate(epochs)]
    if not any(epochs):
        raise ConfigError(f"{where}: every round has 0 epochs; a cycle must train")
    return epochs


@dataclass
class RunConfig:
    """A whole run (see the module docstring for the JSON layout)."""

    rounds: list
    decoders: dict
    encoder: StepSpec = field(default_factory=lambda: StepSpec("image"))
    latent_dim: int = 4
    latent_noise_std: float = 0.1
    latent_penalty: float = 0.0
    latent_shrink: float = 0.0
    validation_fraction: float = 0.1
    projector: str = "separable"
    seed: int = 0
    refine: RefineConfig = field(default_factory=RefineConfig)
    data: DataConfig = field(default_factory=DataConfig)
    #: the stages in order (:mod:`gmmplat.train.schedule`); null: derived from ``rounds`` and ``refine``
    schedule: list | None = None

    @classmethod
    def from_dict(cls, d, where: str = "config") -> "RunConfig":
        d = _check_keys(d, cls, where)
        if not isinstance(d.get("decoders"), dict) or not d["decoders"]:
            raise ConfigError(f"{where}.decoders: an object of named decoders is required")
        if not isinstance(d.get("rounds"), list) or not d["rounds"]:
            raise ConfigError(f"{where}.rounds: a list of at least one round is required")
        projector = d["projector"]
        if not isinstance(projector, str):
            raise ConfigError(f"{where}.projector: expected a projector name")
        vf = _number(d["validation_fraction"], f"{where}.validation_fraction", 0.0)
        if vf >= 1.0:
            raise ConfigError(f"{where}.validation_fraction: must be < 1, got {vf:g}")
        decoders = {str(k): DecoderSpec.from_dict(v, f"decoders.{k}") for k, v in d["decoders"].items()}
        cfg = cls(
            rounds=[RoundConfig.from_dict(r, f"rounds[{i}]", {k: v.kind for k, v in decoders.items()})
                    for i, r in enumerate(d["rounds"])],
            decoders=decoders,
            encoder=StepSpec.from_dict(d["encoder"], "encoder"),
            latent_dim=_number(d["latent_dim"], f"{where}.latent_dim", 1, integer=True),
            latent_noise_std=_number(d["latent_noise_std"], f"{where}.latent_noise_std", 0.0),
            latent_penalty=_number(d["latent_penalty"], f"{where}.latent_penalty", 0.0),
            latent_shrink=_number(d["latent_shrink"], f"{where}.latent_shrink", 0.0),
            validation_fraction=vf,
            projector=projector,
            seed=_number(d["seed"], f"{where}.seed", 0, integer=True),
            refine=RefineConfig.from_dict(d["refine"]),
            data=DataConfig.from_dict(d["data"]),
            schedule=_schedule(d["schedule"], "schedule"),
        )
        cfg._check_structure()
        return cfg

    def _check_structure(self) -> None:
        if "encoder" in self.decoders:
            raise ConfigError("decoders: 'encoder' is reserved for the encoder; rename that decoder")
        previous: list[str] = []
        for i, r in enumerate(self.rounds):
            unknown = [n for n in r.decoders if n not in self.decoders]
            if unknown:
                raise ConfigError(f"rounds[{i}].decoders: unknown decoder(s) {', '.join(unknown)}; "
                                  f"defined: {', '.join(self.decoders)}")
            dropped = [n for n in previous if n not in r.decoders]
            if dropped:
                raise ConfigError(f"rounds[{i}].decoders: decoder(s) {', '.join(dropped)} of the previous round "
                                  "are missing (decoders can be added in a later round, not removed)")
            bad = [n for n in r.trained_modules() if n != "encoder" and n not in r.decoders]
            if bad:
                raise ConfigError(f"rounds[{i}].train: {', '.join(bad)} is not 'encoder' nor a decoder of this round")
            previous = r.decoders
        ref = self.refine
        for key in ("cycle_epochs", "last_cycle_epochs"):
            epochs = getattr(ref, key)
            if epochs is not None and len(epochs) != len(self.rounds):
                raise ConfigError(f"refine.{key}: {len(epochs)} entries for {len(self.rounds)} round(s); "
                                  "give one number of epochs per round (0 leaves a round out of the cycles)")
        if ref.components is not None and ref.components > self.latent_dim:
            raise ConfigError(f"refine.components: {ref.components} principal components, but latent_dim is "
                              f"{self.latent_dim}")

    # ------------------------------------------------------------------ views
    def decoder_order(self) -> list[str]:
        """All decoders in the order they first appear in the rounds (their index in the model)."""
        order: list[str] = []
        for r in self.rounds:
            order += [n for n in r.decoders if n not in order]
        return order

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["schedule"] is None:  # the derived schedule: the hash of a configuration without one is unchanged
            del d["schedule"]
        if d["refine"]["pose_samples"] == 1:  # likewise for a refinement at the corrected poses alone
            del d["refine"]["pose_samples"]
        for key in ("pose_cycles", "last_cycle_epochs", "last_cycle_restart"):  # and for the other cycle defaults
            if d["refine"][key] is None:
                del d["refine"][key]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def hash(self) -> str:
        return config_hash(self.to_dict())

    def check_bands(self, box: int, pixel_size_angstrom: float) -> None:
        """Every round's band is valid for this box and pixel size (ConfigError naming the round)."""
        from ..physics.fourier import Band

        for i, r in enumerate(self.rounds):
            try:
                Band(box, pixel_size_angstrom, r.high_res_angstrom, r.low_res_angstrom)
            except ConfigError as exc:
                raise ConfigError(f"rounds[{i}]: {exc}") from None


def config_hash(d: dict) -> str:
    """sha256 of the canonical JSON of a configuration dict (first 16 hex digits)."""
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_config(path: str | os.PathLike) -> RunConfig:
    """Read a run configuration JSON file (InputError naming the file on any problem).

    A run folder's ``config.json`` (``{"hash", "config", ...}``) is accepted too: its
    ``config`` is the configuration the run was started with.
    """
    if os.path.isdir(path):
        raise InputError(path, "is a folder, not a configuration file (.json)")
    if not os.path.isfile(path):
        raise InputError(path, "configuration file not found")
    try:
        with open(path) as fh:
            d = json.load(fh)
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not valid JSON ({exc})") from None
    if isinstance(d, dict) and "config" in d and "hash" in d:  # a run folder's config.json
        d = d["config"]
    try:
        return RunConfig.from_dict(d)
    except ConfigError as exc:
        raise InputError(path, str(exc)) from None
