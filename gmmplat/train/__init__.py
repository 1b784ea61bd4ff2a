"""Training of heterogeneity models: run configuration, trainer, checkpoints, outputs.

``train(RunConfig, out_dir, resume=..., device=...)`` runs the rounds of a
configuration on ``config.data``'s particles; ``load_run(run_dir)`` rebuilds the
trained model for analysis.  See docs/training.md.
"""
from .config import DataConfig, DecoderSpec, RegularizerSpec, RoundConfig, RunConfig, StepSpec, load_config
from .distributed import DistContext, init_distributed
from .loop import Trainer, TrainingDiverged, TrainResult, train, validate_config
from .outputs import TrainedRun, load_run
from .presets import PRESETS, preset

__all__ = [
    "RunConfig", "RoundConfig", "DecoderSpec", "RegularizerSpec", "StepSpec", "DataConfig", "load_config",
    "DistContext", "init_distributed", "Trainer", "TrainingDiverged", "TrainResult", "train", "validate_config",
    "TrainedRun", "load_run", "PRESETS", "preset",
]
