"""What the stages of a schedule share: the trainer's services, the modules and the latent.

:class:`ScheduleState` is the one object a stage reads and changes.  Its parts:

* ``trainer``: the public services of the :class:`~gmmplat.train.loop.Trainer` (config, dataset,
  neutral GMM, per-round steps, device, :meth:`~gmmplat.train.loop.Trainer.train_epoch`);
* ``encoder`` and ``decoders`` (name -> module): the run's modules, kept across stages;
  ``model``: the last model a stage assembled (its ``decode`` serves the refinements);
* ``latent`` ``(n_items, d)``: the latent the next fixed-latent stage trains on (None: the
  encoder's); ``latent_label``: where it came from ("encoder" or "cycle");
* ``refinement``: the last :class:`~gmmplat.refine.latent.Refinement`, ``refined_from``: its input
  and that input's label; ``particle``: ``(n_items,)`` bool, items not found junk (None: all);
* ``cycle``: refinements so far (a refinement starts a cycle); ``records``: one record per cycle,
  each stage adding its entries; ``latent_changed``: a refinement ran since the decoders last trained.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ScheduleState", "STATE_KEYS"]

#: the parts of the state a checkpoint keeps (the modules are saved as state dicts beside them)
STATE_KEYS = ("latent", "latent_label", "encoder_latent", "refinement", "refined_from", "particle", "cycle",
              "records", "latent_changed", "trained_decoders", "frozen", "last_round")


@dataclass
class ScheduleState:
    trainer: object
    encoder: object = None
    decoders: dict = field(default_factory=dict)
    model: object = None
    latent: np.ndarray | None = None
    latent_label: str = "encoder"
    encoder_latent: np.ndarray | None = None
    refinement: object = None
    refined_from: tuple | None = None
    particle: np.ndarray | None = None
    cycle: int = 0
    records: list = field(default_factory=list)
    latent_changed: bool = False
    trained_decoders: bool = False
    frozen: list = field(default_factory=list)
    last_round: int = 0
    cycles_total: int = 0
    stage_index: int = 0

    @property
    def config(self):
        return self.trainer.config

    def current_latent(self) -> tuple[np.ndarray, str]:
        """``(latent (n_items, d), label)``: the last stage's latent, else the encoder's."""
        if self.latent is not None:
            return self.latent, self.latent_label
        return self.trainer.encode_items(self), "encoder"

    def train_items(self) -> np.ndarray:
        """The training split, less the items found junk."""
        items = self.trainer.train_items
        return items if self.particle is None else items[self.particle[items]]

    def record(self) -> dict:
        """The current cycle's record (started by its refinement)."""
        return self.records[-1]

    def saved(self) -> dict:
        return {k: getattr(self, k) for k in STATE_KEYS}

    def restore(self, saved: dict) -> None:
        for k in STATE_KEYS:
            if k in saved:
                setattr(self, k, saved[k])
