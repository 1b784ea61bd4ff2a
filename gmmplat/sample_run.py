"""What a training notebook (02–05) starts from: one sample dataset, its neutral GMM, a run folder.

``s = sample_run(DATA_DIR, OUT_DIR, "bend", "02_hierarchical_bend")`` loads the neutral GMM
that notebook 01 wrote (``OUT_DIR/gmm/<dataset>/gmm.npz``), the ground truth and the masks
of the dataset, and prints what they hold; ``s.data_config()`` is the run configuration's
data section.  Training is then ``gmmplat.train.train(config, s.run_dir, reuse="if-same-config")``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import ConfigError, InputError
from .gmm import GMM
from .train.config import DataConfig


@dataclass
class SampleRun:
    """``data``: the dataset folder; ``gmm_path``: the neutral GMM used; ``run_dir``: ``OUT_DIR/runs/<run>``;
    ``neutral``; ``truth`` (truth.csv: ``t`` per particle); ``masks`` (masks.json: name -> selection)."""

    dataset: str
    data: Path
    gmm_path: Path
    run_dir: Path
    neutral: GMM
    truth: pd.DataFrame
    masks: dict

    def data_config(self) -> DataConfig:
        """The data section of a run on this dataset (absolute paths)."""
        return DataConfig(star=str((self.data / "particles.star").resolve()), gmm=str(self.gmm_path.resolve()))

    def require_masks(self, *names: str) -> None:
        """Each mask is in the neutral GMM (notebook 01 adds one per entry of masks.json)."""
        for name in names:
            if name not in self.neutral.masks():
                raise ConfigError(f"the neutral GMM {self.gmm_path} has no mask {name!r}: notebook 01 adds one "
                                  "per entry of masks.json")


def sample_run(data_dir: str | os.PathLike, out_dir: str | os.PathLike, dataset: str, run_name: str,
               verbose: bool = True) -> SampleRun:
    """Load a sample dataset's neutral GMM, truth and masks (see the module docstring)."""
    data = Path(data_dir) / dataset
    gmm_path = Path(out_dir) / "gmm" / dataset / "gmm.npz"
    if not gmm_path.is_file():
        raise InputError(gmm_path, "missing: run notebook 01 first (it builds the neutral GMMs)")
    s = SampleRun(dataset, data, gmm_path, Path(out_dir) / "runs" / run_name, GMM.load(gmm_path),
                  pd.read_csv(data / "truth.csv"), json.loads((data / "masks.json").read_text())["masks"])
    if verbose:
        n = s.neutral
        print(json.loads((data / "metadata.json").read_text())["description"])
        print(f"neutral GMM: {n.n} Gaussians, box {n.box} px at {n.pixel_size_angstrom:g} Å/px; "
              f"extras: {', '.join(sorted(n.extras))}")
    return s
