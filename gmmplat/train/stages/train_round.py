"""``train``: a training round (encoder and decoders from the images), the paper's rounds.

Spec: ``{"kind": "train", "round": i}`` (an index of ``config.rounds`` or a round's name); the round
gives the epochs, band, loss, regularizers and what trains (docs/training.md).
"""
from __future__ import annotations

import torch

from ..builder import assemble_model, configure_trainable
from .base import STAGES, Stage, round_index

__all__ = ["TrainRound"]


@STAGES.register("train")
class TrainRound(Stage):
    options = {"round": 0}
    trains = True
    all_processes = True

    def check_options(self, config) -> None:
        self.round = round_index(self.spec["round"], self.where, config)

    def run(self, state, resume: dict | None = None) -> None:
        trainer, cfg, r = state.trainer, state.config, self.round
        rc = cfg.rounds[r]
        steps = trainer.steps[r]
        state.encoder.set_context(steps.context)
        for name in rc.decoders:
            if name not in state.decoders:
                state.decoders[name] = trainer.new_decoder(name)
        params = configure_trainable(cfg, r, state.encoder, state.decoders)
        model = assemble_model(cfg, state.encoder, state.decoders, r, trainer.neutral)
        model.to(trainer.device)
        for m in steps.modules():
            m.to(trainer.device)
        optimizer = torch.optim.Adam(params, lr=rc.learning_rate)
        state.model, state.last_round = model, r
        state.encoder_latent = None  # the encoder trains: its points change
        first, partial = 0, None
        if resume is not None:
            first, partial = trainer.resume_epoch(resume, model, optimizer), resume.get("partial")
        forward = trainer.dist.wrap(model, trainer.device)  # DDP where distributed
        for e in range(first, rc.epochs):
            row = trainer.train_epoch(r, e, model, forward, optimizer, steps, partial=partial if e == first else None)
            trainer.end_epoch(state, row, model, optimizer, e + 1, f"round {r + 1}, epoch {e + 1}")
