"""The base of a schedule's stages, and their registry.

A run is a schedule: a list of stages run in order by one loop (:mod:`gmmplat.train.schedule`).
A stage is one step of the method: a training round, a latent refinement, a decoder round on a
fixed latent, ...  Each kind is one file in this package that registers its class::

    @STAGES.register("my_stage")
    class MyStage(Stage):
        options = {"steps": 10}          # the spec's keys and their defaults

        def run(self, state, resume=None): ...

and a configuration names it: ``"schedule": [..., {"kind": "my_stage", "steps": 5}]``.

A stage talks to the run only through :class:`~gmmplat.train.stages.state.ScheduleState` (the
trainer's public services, the modules and the latent the stages share); no stage calls another's
methods.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ...errors import ConfigError
from ...registry import Registry

__all__ = ["STAGES", "Stage"]

STAGES: Registry = Registry("stage")


class Stage(ABC):
    """One stage of a schedule, built from its spec ``{"kind": name, **options}``.

    Class attributes a stage declares:

    * ``options``: its spec keys with their defaults (unknown keys are refused);
    * ``trains``: it runs epochs (a checkpoint after each; a resume continues inside it);
    * ``all_processes``: it runs in every process of a distributed run (the training rounds);
      the others run in the main process only, after every stage that does;
    * ``needs_refinement`` / ``provides_refinement``: it reads / writes the state's refinement (a
      schedule is refused where a reader has no writer before it);
    * ``needs_poses`` / ``provides_poses``: the same for the pose corrections (``needs_poses`` may
      depend on the spec: a property).

    Args:
        spec: the stage's options (``kind`` removed), checked by :meth:`check_options`.
        where: its place in the configuration, for errors (``schedule[3]``).
        config: the :class:`~gmmplat.train.config.RunConfig` it belongs to.
    """

    options: ClassVar[dict] = {}
    trains: ClassVar[bool] = False
    all_processes: ClassVar[bool] = False
    needs_refinement: ClassVar[bool] = False
    provides_refinement: ClassVar[bool] = False
    needs_poses: bool = False
    provides_poses: ClassVar[bool] = False
    registry_name: ClassVar[str] = ""

    def __init__(self, spec: dict, where: str, config):
        unknown = sorted(set(spec) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)} of a {self.registry_name} stage; "
                              f"known: {known}")
        self.where = where
        self.spec = {**self.options, **spec}
        self.check_options(config)

    def check_options(self, config) -> None:
        """Check ``self.spec`` against the configuration (ConfigError naming ``self.where``)."""

    @abstractmethod
    def run(self, state, resume: dict | None = None) -> None:
        """Run on ``state`` (:class:`~gmmplat.train.stages.state.ScheduleState`); ``resume``: for a
        training stage, the checkpoint of its last finished epoch."""


def round_index(value, where: str, config, key: str = "round") -> int:
    """A round of ``config.rounds`` named by its index or its name."""
    names = [r.name for r in config.rounds]
    if isinstance(value, str) and value in names:
        return names.index(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(config.rounds):
        raise ConfigError(f"{where}.{key}: a round index (0 to {len(config.rounds) - 1}) or a round's name, "
                          f"got {value!r}")
    return int(value)
