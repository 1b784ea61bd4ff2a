"""``fit_decoders``: the decoders trained on a fixed latent (the M step of a refinement cycle).

Spec: ``{"kind": "fit_decoders", "round": i, "epochs": e, "decoders": null}``.  The round gives the
band, loss, regularizers, learning rate and the decoders that exist; the encoder is replaced by the
state's latent, one row per dataset item (:class:`CycleLatent`), and only the decoders train.
``epochs`` null: the round's own.

What happens to a decoder when the latent has changed since it last trained (a refinement ran) is
what it declares (:attr:`gmmplat.decoders.base.Decoder.on_new_latent`: ``continue`` from its
weights, ``rebuild`` from fresh ones, ``freeze``: kept as it is), unless ``decoders`` names one
policy for all.  Epochs are seeded by ``(seed, round, epoch, cycle)``: a schedule replays exactly.
"""
from __future__ import annotations

import numpy as np
import torch

from ...encoders.fixed import TableEncoder
from ...errors import ConfigError
from ..builder import assemble_model, configure_trainable
from ..config import _number
from .base import STAGES, Stage, round_index

__all__ = ["CycleLatent", "FitDecoders", "POLICIES"]

POLICIES = ("continue", "rebuild", "freeze")


class CycleLatent(TableEncoder):
    """``z[b]`` = row ``index_b · K + sym_index_b`` of a cycle's latent ``(n_items, d)`` (in memory).

    ``K``: symmetry copies per particle (each copy has its own refined point).
    """

    def __init__(self, latent_dim: int, context, latent: np.ndarray, n_sym: int, cycle: int):
        super().__init__(latent_dim, context)
        self.n_sym = int(n_sym)
        self.use_table(latent, f"refinement cycle {cycle}", "latent points", "the cycle's latent is of other particles")

    def forward(self, batch) -> torch.Tensor:
        item = batch.index.to(self.latent.device).long() * self.n_sym + batch.sym_index.to(self.latent.device).long()
        return self.latent[item]


@STAGES.register("fit_decoders")
class FitDecoders(Stage):
    options = {"round": 0, "epochs": None, "decoders": None}
    needs_refinement = True
    trains = True

    def check_options(self, config) -> None:
        self.round = round_index(self.spec["round"], self.where, config)
        epochs = self.spec["epochs"]
        self.epochs = config.rounds[self.round].epochs if epochs is None else _number(
            epochs, f"{self.where}.epochs", 1, integer=True)
        policy = self.spec["decoders"]
        if policy is not None and policy not in POLICIES:
            raise ConfigError(f"{self.where}.decoders: one of {', '.join(POLICIES)} (or null: each decoder's own), "
                              f"got {policy!r}")

    def _renew(self, state) -> None:
        """The latent changed since the decoders trained: each follows its policy."""
        for name in list(state.decoders):
            policy = self.spec["decoders"] or getattr(state.decoders[name], "on_new_latent", "continue")
            if policy == "rebuild":
                del state.decoders[name]
            elif policy == "freeze" and name not in state.frozen:
                state.frozen.append(name)
        state.latent_changed = False

    def run(self, state, resume: dict | None = None) -> None:
        trainer, cfg, r = state.trainer, state.config, self.round
        if state.latent is None:
            raise ConfigError(f"{self.where}: fit_decoders needs a latent: put a refine_latent stage before it")
        if state.latent_changed and resume is None:
            self._renew(state)
        steps = trainer.steps[r]
        table = CycleLatent(cfg.latent_dim, steps.context, state.latent, trainer.dataset.n_sym, state.cycle)
        for name in cfg.rounds[r].decoders:
            if name not in state.decoders:
                state.decoders[name] = trainer.new_decoder(name)
        params = configure_trainable(cfg, r, table, state.decoders)
        for name in state.frozen:
            for p in state.decoders[name].parameters():
                p.requires_grad_(False)
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ConfigError(f"{self.where}: nothing to train (every decoder of the round is frozen)")
        model = assemble_model(cfg, table, state.decoders, r, trainer.neutral).to(trainer.device)
        for m in steps.modules():
            m.to(trainer.device)
        optimizer = torch.optim.Adam(params, lr=cfg.rounds[r].learning_rate)
        state.model, state.last_round, state.trained_decoders = model, r, True
        first = 0 if resume is None else trainer.resume_epoch(resume, model, optimizer)
        items = state.train_items()
        n_rounds = len(cfg.rounds)
        for e in range(first, self.epochs):
            with torch.enable_grad():
                row = trainer.train_epoch(r, e, model, model, optimizer, steps, cycle=state.cycle,
                                          cycles=state.cycles_total, epochs=self.epochs,
                                          history_round=state.cycle * n_rounds + r + 1, items=items)
            state.record()["seconds"] = state.record().get("seconds", 0.0) + row["seconds"]
            trainer.end_epoch(state, row, model, optimizer, e + 1, f"cycle {state.cycle}, round {r + 1}, epoch {e + 1}")
