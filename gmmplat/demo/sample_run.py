"""What a training notebook (02–05) starts from: one sample dataset, its neutral GMM, a run folder.

``s = sample_run(DATA_DIR, OUT_DIR, "bend", "02_hierarchical_bend")`` loads the neutral GMM
that notebook 01 wrote (``OUT_DIR/gmm/<dataset>/gmm.npz``), the ground truth and the masks
of the dataset, and prints what they hold; ``s.data_config()`` is the run configuration's
data section.  ``run = s.train(config)`` trains (``gmmplat.train.train(config, s.run_dir,
reuse="if-same-config")``) and loads the run; ``s.show(run)`` displays its score, losses and
latent space.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, InputError
from ..model.gmm import GMM
from ..train.config import DataConfig


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

    def train(self, config, progress: bool = True):
        """Train ``config`` on this dataset into ``run_dir`` (its data section set here, printed first);
        the same configuration already there is resumed or reused, anything else is replaced.
        Returns the loaded run (:func:`gmmplat.train.load_run`)."""
        from ..train import load_run, train

        config.data = self.data_config()
        print(config.to_json())
        train(config, self.run_dir, reuse="if-same-config", progress=progress)
        return load_run(self.run_dir)

    def show(self, run) -> None:
        """Display the run's score against the truth, its losses and its latent space coloured by ``t``."""
        from IPython.display import display

        from .. import viewers
        from ..analysis.evaluate import spearman_best_pc

        from ..analysis.evaluate import particle_latent
        from ..analysis.runs import junk_flags

        t = self.truth["t"].to_numpy()
        ok = ~junk_flags(self.truth)  # junk has no conformation
        rho, pc = spearman_best_pc(particle_latent(run.latent)[ok], t[ok])
        name = self.run_dir.name
        left = f" ({int((~ok).sum())} junk particles left out)" if not ok.all() else ""
        print(f"|Spearman| between the true t and latent PC{pc}: {rho:.3f}{left}")
        display(viewers.loss_figure(self.run_dir / "losses.csv", title=f"{name}: losses"))
        display(viewers.latent_figure(run.latent, color=t, color_label="true t",
                                      title=f"{name}: latent space (PCA), coloured by the true t"))

    def require_masks(self, *names: str) -> None:
        """Each mask is in the neutral GMM (notebook 01 adds one per entry of masks.json)."""
        for name in names:
            if name not in self.neutral.masks():
                raise ConfigError(f"the neutral GMM {self.gmm_path} has no mask {name!r}: notebook 01 adds one "
                                  "per entry of masks.json")


def sample_run(data_dir: str | os.PathLike, out_dir: str | os.PathLike, dataset: str, run_name: str,
               verbose: bool = True) -> SampleRun:
    """Load a sample dataset's neutral GMM, truth and masks (see the module docstring).

    A realistic variant (``bend_realistic``) shares its clean dataset's map and model, so its GMM.
    """
    from .notebooks import REALISTIC_SUFFIX

    data = Path(data_dir) / dataset
    gmm_path = Path(out_dir) / "gmm" / dataset.removesuffix(REALISTIC_SUFFIX) / "gmm.npz"
    if not gmm_path.is_file():
        raise InputError(gmm_path, "missing: run notebook 01 first (it builds the neutral GMMs)")
    s = SampleRun(dataset, data, gmm_path, Path(out_dir) / "runs" / run_name, GMM.load(gmm_path),
                  pd.read_csv(data / "truth.csv", keep_default_na=False), json.loads((data / "masks.json").read_text())["masks"])
    if verbose:
        n = s.neutral
        print(json.loads((data / "metadata.json").read_text())["description"])
        print(f"neutral GMM: {n.n} Gaussians, box {n.box} px at {n.pixel_size_angstrom:g} Å/px; "
              f"extras: {', '.join(sorted(n.extras))}")
    return s
