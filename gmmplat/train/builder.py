"""Builds the steps of a run from its configuration (used by the trainer and by ``load_run``).

Every module is built by registry name (``ENCODERS``, ``DECODERS``, ``LOSSES``,
``REGULARIZERS``, ``PROJECTORS``); nothing here branches on those names.

Initial weights depend only on the seed and the module's name (the encoder, or
a decoder's name in the config), never on what was built before, so a decoder
added in round 2 starts from the same weights whether the run was interrupted
or not.
"""
from __future__ import annotations

import fnmatch
import inspect
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..decoders import DECODERS
from ..decoders.multi import MultiDecoder
from ..encoders import ENCODERS
from ..encoders.base import StepContext
from ..errors import ConfigError
from ..losses import LOSSES
from ..model.gmm import GMM
from ..model.hetero import HeteroModel
from ..model.masks import subset_mask
from ..physics.fourier import Band
from ..physics.image_model import ImageModel
from ..projectors import PROJECTORS
from ..regularizers import REGULARIZERS
from .config import RoundConfig, RunConfig

__all__ = ["RoundSteps", "derive_seed", "subset_mask", "build_round_steps", "build_encoder", "build_decoder",
           "assemble_model", "configure_trainable", "build_model_for_round", "step_classes", "step_plugins"]


def derive_seed(*words) -> int:
    """A 63-bit seed that depends only on ``words`` (ints or strings)."""
    ints = [w if isinstance(w, int) else int.from_bytes(str(w).encode()[:32].ljust(4, b"\0"), "little")
            for w in words]
    return int(np.random.SeedSequence([abs(int(i)) for i in ints]).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass
class RoundSteps:
    """The band-dependent steps of one round: the forward model, the loss and the regularizers."""

    image_model: ImageModel
    loss: nn.Module
    regularizers: nn.ModuleList
    context: object  # gmmplat.encoders.StepContext

    @property
    def band(self) -> Band:
        return self.image_model.band

    def modules(self) -> list[nn.Module]:
        """The modules to move to the training device."""
        return [self.image_model, self.loss, self.regularizers]


def step_classes(config: RunConfig) -> list[type]:
    """The classes of every step the configuration names (encoder, decoders, projector, losses, regularizers)."""
    classes = [ENCODERS.get(config.encoder.kind), PROJECTORS.get(config.projector)]
    classes += [DECODERS.get(spec.kind) for spec in config.decoders.values()]
    for r in config.rounds:
        classes += [LOSSES.get(r.loss.kind)] + [REGULARIZERS.get(s.kind) for s in r.regularizers]
    return classes


def step_plugins(config: RunConfig) -> list[str]:
    """Plugins that registered the configuration's steps: the ``.py`` file (absolute path) or the
    module name of every step class defined outside gmmplat, in first-use order.  Saved with a run
    so that loading it imports them again (:func:`gmmplat.train.load_run`)."""
    out: list[str] = []
    for cls in step_classes(config):
        if cls.__module__.split(".")[0] == "gmmplat":
            continue
        try:
            path = inspect.getfile(cls)
        except TypeError:  # a class without a source file
            path = ""
        spec = os.path.abspath(path) if path.endswith(".py") else cls.__module__
        if spec not in out:
            out.append(spec)
    return out


def build_round_steps(config: RunConfig, round_index: int, neutral: GMM) -> RoundSteps:
    r: RoundConfig = config.rounds[round_index]
    where = f"rounds[{round_index}]"
    try:
        band = Band(neutral.box, neutral.pixel_size_angstrom, r.high_res_angstrom, r.low_res_angstrom)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    image_model = ImageModel(band, PROJECTORS.build(config.projector, band))
    loss = LOSSES.build(r.loss.kind, band, **r.loss.options)
    regs = nn.ModuleList(REGULARIZERS.build(s.kind, neutral, weight=s.weight, **s.options) for s in r.regularizers)
    return RoundSteps(image_model, loss, regs, StepContext(neutral, band, image_model, loss))


def build_encoder(config: RunConfig, neutral: GMM, first_steps: RoundSteps) -> nn.Module:
    """The encoder, built with the context of round 0 (seeded by the run seed only)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "encoder"))
        return ENCODERS.build(config.encoder.kind, config.latent_dim, first_steps.context, **config.encoder.options)


def build_decoder(config: RunConfig, name: str, neutral: GMM) -> nn.Module:
    spec = config.decoders[name]
    subset = subset_mask(neutral, spec.subset, f"decoders.{name}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "decoder", name))
        return DECODERS.build(spec.kind, config.latent_dim, neutral, subset=subset, **spec.options)


def assemble_model(config: RunConfig, encoder: nn.Module, decoders: dict, round_index: int, neutral: GMM) -> nn.Module:
    """HeteroModel of round ``round_index``: its decoders in order of first appearance."""
    names = [n for n in config.decoder_order() if n in config.rounds[round_index].decoders]
    return HeteroModel(encoder, MultiDecoder([decoders[n] for n in names]), neutral,
                       latent_noise_std=config.latent_noise_std, latent_penalty=config.latent_penalty,
                       latent_shrink=config.latent_shrink)


def configure_trainable(config: RunConfig, round_index: int, encoder: nn.Module, decoders: dict) -> list:
    """Set ``requires_grad`` for round ``round_index``; returns the trainable parameters in a fixed order.

    Order of operations: every decoder of the round gets its round options
    (:meth:`Decoder.configure_round`, e.g. a hierarchical transition becomes trainable),
    then modules not in ``train`` are frozen, then the ``freeze`` patterns apply.
    """
    r = config.rounds[round_index]
    where = f"rounds[{round_index}]"
    trained = set(r.trained_modules())
    modules = {"encoder": encoder, **{n: decoders[n] for n in config.decoder_order() if n in r.decoders}}
    for name in modules:
        if name != "encoder":
            try:
                decoders[name].configure_round(r.decoder_options.get(name, {}), name in trained)
            except ConfigError as exc:
                raise ConfigError(f"{where}.decoder_options.{name}: {exc}") from None
    named = []
    for name, module in modules.items():
        for pname, p in module.named_parameters():
            p.requires_grad_(name in trained)
            named.append((f"{name}.{pname}", p))
    for pattern in r.freeze:
        hits = [p for n, p in named if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            examples = ", ".join(n for n, _ in named[:4])
            raise ConfigError(f"{where}.freeze: pattern {pattern!r} matches no parameter (names look like {examples})")
        for p in hits:
            p.requires_grad_(False)
    params = [p for _, p in named if p.requires_grad]
    if not params:
        raise ConfigError(f"{where}: nothing to train (every parameter is frozen)")
    return params


def build_model_for_round(config: RunConfig, neutral: GMM, round_index: int,
                          round_steps: list[RoundSteps] | None = None):
    """Encoder, decoders and model with the structure of round ``round_index`` (fresh weights).

    ``round_steps``: the steps of every round when already built (the trainer's), else built here.
    Returns ``(model, encoder, decoders dict, steps, trainable params)``.
    """
    if round_steps is None:
        first = build_round_steps(config, 0, neutral)
        steps = first if round_index == 0 else build_round_steps(config, round_index, neutral)
    else:
        first, steps = round_steps[0], round_steps[round_index]
    encoder = build_encoder(config, neutral, first)
    encoder.set_context(steps.context)
    decoders = {n: build_decoder(config, n, neutral) for n in config.rounds[round_index].decoders}
    params = configure_trainable(config, round_index, encoder, decoders)
    model = assemble_model(config, encoder, decoders, round_index, neutral)
    return model, encoder, decoders, steps, params
