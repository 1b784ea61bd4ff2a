"""A run's schedule: its stages, declared in the configuration or derived from its rounds and
``refine`` section, and the checks that hold before any runs.

``config.schedule`` (a list of ``{"kind": ..., **options}``; :mod:`gmmplat.train.stages`) declares
the stages.  Without it the schedule is :func:`default_schedule`: every round in order, then the
refinement the ``refine`` section asks for, as stages::

    train(0) … train(R-1)                                      the rounds
    [refine_latent → [refine_poses] → principal_axes → fit_decoders(r) …] × cycles
    refine_latent                                               (anchors, no cycles)

(the last cycle's ``fit_decoders`` take ``refine.last_cycle_epochs`` and ``last_cycle_restart`` where given)

(the last cycle's ``refine_latent`` averages over ``refine.pose_samples`` poses when above 1 and the poses
were refined before it)

so that a preset and the schedule it derives are the same run, seed for seed.
"""
from __future__ import annotations

from ..errors import ConfigError
from .config import RunConfig
from .stages import STAGES, Stage

__all__ = ["default_schedule", "build_schedule", "check_distributed", "count_cycles", "cycle_rounds", "posed_cycles",
           "schedule_specs"]


def cycle_rounds(config: RunConfig, last: bool = False) -> list[tuple[int, int]]:
    """``[(round index, epochs)]`` a cycle trains: rounds with epochs (``refine.cycle_epochs`` or the
    round's own; the ``last`` cycle's ``refine.last_cycle_epochs`` where given) and at least one
    decoder among the modules they train (the encoder is a table)."""
    key, epochs = "refine.cycle_epochs", config.refine.cycle_epochs or [r.epochs for r in config.rounds]
    if last and config.refine.last_cycle_epochs:
        key, epochs = "refine.last_cycle_epochs", config.refine.last_cycle_epochs
    plan = [(i, int(e)) for i, (r, e) in enumerate(zip(config.rounds, epochs))
            if e > 0 and any(m != "encoder" for m in r.trained_modules())]
    if not plan:
        raise ConfigError(f"refine.cycles: no round trains a decoder in the cycles ({key} and the "
                          "rounds' train lists leave only the encoder, which the cycles hold fixed)")
    missing = [n for n in config.rounds[-1].decoders if n not in config.rounds[plan[-1][0]].decoders]
    if missing:
        raise ConfigError(f"{key}: decoder(s) {', '.join(missing)} of the last round are not trained "
                          "in the cycles; give the round that adds them epochs")
    return plan


def posed_cycles(config: RunConfig) -> range:
    """The cycles (numbered from 1) whose refinement a pose refinement follows: with ``refine.pose_steps``,
    the ``refine.pose_cycles`` just before the last (null: all before it); none in the last, whose poses
    would reach only its decoder epochs."""
    ref = config.refine
    if not ref.pose_steps or ref.cycles < 2:
        return range(0)
    return range(max(1, ref.cycles - (ref.pose_cycles or ref.cycles)), ref.cycles)


def default_schedule(config: RunConfig) -> list[dict]:
    """The stages of ``config.rounds`` and ``config.refine`` (docs/training.md, "Schedule")."""
    specs = [{"kind": "train", "round": i} for i in range(len(config.rounds))]
    ref = config.refine
    if not ref.anchors:
        return specs
    refine = {"kind": "refine_latent", "high_res_angstrom": ref.high_res_angstrom, "temperature": ref.temperature}
    if not ref.cycles:
        return specs + [{**refine, "anchors": ref.anchors, "stretch": 1.0}]
    posed = posed_cycles(config)
    for c in range(1, ref.cycles + 1):
        plan = cycle_rounds(config, last=c == ref.cycles)
        restart = ref.restart if c < ref.cycles or ref.last_cycle_restart is None else ref.last_cycle_restart
        anchors = ref.anchors if c == ref.cycles else (ref.cycle_anchors or ref.anchors)
        last = {"pose_samples": ref.pose_samples} if c == ref.cycles and ref.pose_samples > 1 and posed else {}
        specs.append({**refine, "anchors": anchors, "stretch": ref.cycle_stretch, "junk_scale": ref.junk_scale,
                      **last})
        if c in posed:
            specs.append({"kind": "refine_poses", "steps": ref.pose_steps, "sigma_deg": ref.pose_sigma_deg,
                          "sigma_angstrom": ref.pose_sigma_angstrom, "high_res_angstrom": ref.pose_high_res_angstrom})
        specs.append({"kind": "principal_axes", "components": ref.components})
        specs += [{"kind": "fit_decoders", "round": r, "epochs": e,
                   "decoders": "rebuild" if restart else "continue"} for r, e in plan]
    return specs


def schedule_specs(config: RunConfig) -> list[dict]:
    """The declared schedule, or the derived one."""
    return [dict(s) for s in config.schedule] if config.schedule is not None else default_schedule(config)


def build_schedule(config: RunConfig) -> list[Stage]:
    """The stages of ``config`` (ConfigError naming ``schedule[i]`` for a bad one, or an order that
    cannot run: the first stage trains a round; a refinement follows a training stage; a stage
    that needs a refinement follows one)."""
    specs, stages = schedule_specs(config), []
    declared = config.schedule is not None
    if declared and (config.refine.anchors or config.refine.cycles):
        raise ConfigError("schedule: a declared schedule replaces refine.anchors and refine.cycles; "
                          "give the refinement as refine_latent stages")
    for i, spec in enumerate(specs):
        where = f"schedule[{i}]" if declared else f"schedule[{i}] (from rounds and refine)"
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if not isinstance(kind, str):
            raise ConfigError(f"{where}.kind: a stage name is required; known: {', '.join(STAGES.names())}")
        try:
            cls = STAGES.get(kind)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        stages.append(cls(spec, where, config))
    if not stages or stages[0].registry_name != "train":
        raise ConfigError("schedule[0]: a schedule starts with a train stage (the encoder and decoders learn "
                          "from the images before anything else)")
    refined = posed = False
    for stage in stages:
        if stage.needs_refinement and not refined:
            raise ConfigError(f"{stage.where}: a {stage.registry_name} stage needs a refinement (refine_latent) "
                              "before it")
        if stage.needs_poses and not posed:
            raise ConfigError(f"{stage.where}: this {stage.registry_name} stage averages over the poses' spread "
                              "that a refine_poses stage before it estimates; add one, or set pose_samples 1")
        refined = refined or stage.provides_refinement
        posed = posed or stage.provides_poses
    return stages


def check_distributed(stages: list[Stage], world_size: int) -> None:
    """In a distributed run the main-process stages (refinements, fixed-latent rounds) come after
    every stage that runs in all processes: the processes' modules would differ otherwise."""
    if world_size <= 1:
        return
    seen_main_only = None
    for stage in stages:
        if not stage.all_processes:
            seen_main_only = seen_main_only or stage
        elif seen_main_only is not None:
            raise ConfigError(f"{stage.where}: in a distributed run every {stage.registry_name} stage comes before "
                              f"the main-process stages ({seen_main_only.where} is a {seen_main_only.registry_name})")


def count_cycles(stages: list[Stage]) -> int:
    """Refinement cycles of a schedule, as the stages number them (a refinement starts a cycle): the
    refinements before its last fixed-latent training stage."""
    last = max((i for i, s in enumerate(stages) if s.trains and s.needs_refinement), default=-1)
    return sum(s.provides_refinement for s in stages[:last])
