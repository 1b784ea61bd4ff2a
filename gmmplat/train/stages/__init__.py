"""Stages of a run's schedule (:mod:`gmmplat.train.schedule`): one file per kind, one registry."""
from .base import STAGES, Stage
from .fit_decoders import CycleLatent, FitDecoders
from .principal_axes import PrincipalAxes
from .refine_latent import RefineLatent
from .refine_poses import RefinePoses
from .state import ScheduleState
from .train_round import TrainRound

__all__ = ["STAGES", "Stage", "ScheduleState", "TrainRound", "RefineLatent", "RefinePoses", "PrincipalAxes",
           "FitDecoders", "CycleLatent"]
