"""Files of a run folder, and loading a finished run for analysis.

Run folder (``gmmplat train --out RUN_DIR``):

* ``config.json``: the full run configuration (with data paths and seed) and its hash
* ``environment.json``: package versions (torch, numpy, gmmplat, python), seed, command line,
  device, number of processes; later resumes are appended under ``resumed``
* ``checkpoint.pt``: see :mod:`gmmplat.train.checkpoint`
* ``losses.csv``: one row per epoch: ``round, round_name, epoch, global_epoch, train_loss,
  train_data_loss, val_loss, learning_rate, train_images_per_s, val_images_per_s, seconds``
  (train_loss includes regularizers and the latent penalty, with latent noise;
  val_loss is the data loss without noise)
* ``losses.png``: the same, plotted (dashed lines mark the start of each round)
* ``latent.npy``: float32 ``(n_particles, d)`` in STAR order: the refined latent points when the
  config's ``refine.anchors`` > 0 (:mod:`gmmplat.refine.latent`), else the encoder without noise;
  symmetry-expanded runs: ``(n_particles, K, d)``, ``[p, k]`` the copy at ``A @ R_k``
* ``latent_encoder.npy``, ``refine.json``: with refinement, the encoder's points and the record
* ``model.pt``: config, state dict, neutral GMM (path and contents): :func:`load_run`
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..decoders import DECODERS
from ..encoders import ENCODERS
from ..errors import InputError
from ..io.atomic import atomic_write_path
from ..losses import LOSSES
from ..model.gmm import GMM
from ..plugins import import_plugins
from ..records import environment  # noqa: F401  (the trainer writes environment.json with it)
from ..projectors import PROJECTORS
from ..regularizers import REGULARIZERS
from .builder import build_model_for_round, step_plugins
from .config import RunConfig

__all__ = ["LOSS_COLUMNS", "write_losses", "plot_losses", "environment", "save_model",
           "TrainedRun", "load_run", "read_losses"]

LOSS_COLUMNS = ["round", "round_name", "epoch", "global_epoch", "train_loss", "train_data_loss", "val_loss",
                "learning_rate", "train_images_per_s", "val_images_per_s", "seconds"]
MODEL_FORMAT = "gmmplat-run-model"


def write_losses(path: str | os.PathLike, history: list[dict]) -> None:
    """``losses.csv`` from the per-epoch rows (atomic)."""
    with atomic_write_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=LOSS_COLUMNS, extrasaction="ignore")
            w.writeheader()
            for row in history:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_losses(path: str | os.PathLike):
    """``losses.csv`` as a pandas DataFrame."""
    import pandas as pd

    if not os.path.isfile(path):
        raise InputError(path, "no losses.csv in this run folder")
    return pd.read_csv(path)


def plot_losses(path: str | os.PathLike, history: list[dict]) -> None:
    """``losses.png``: train and validation loss per epoch.

    Drawn on a bare :class:`matplotlib.figure.Figure` (rendered by Agg), without pyplot, so
    the backend of an interactive session (a notebook) is left alone.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot(111)
    rounds = sorted({r["round"] for r in history})
    for i, k in enumerate(rounds):  # one segment per round: a new band changes the loss scale
        rows = [r for r in history if r["round"] == k]
        x = [r["global_epoch"] for r in rows]
        ax.plot(x, [r["train_loss"] for r in rows], "o-", ms=3, color="C0", label="train" if i == 0 else None)
        ax.plot(x, [r["val_loss"] for r in rows], "s-", ms=3, color="C1", label="validation" if i == 0 else None)
    starts = [r["global_epoch"] for r in history if r["epoch"] == 1 and r["round"] > 1]
    for s in starts:
        ax.axvline(s - 0.5, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png")


def save_model(path: str | os.PathLike, config, model: torch.nn.Module, neutral: GMM, neutral_path: str,
               round_index: int) -> None:
    """``model.pt``: everything :func:`load_run` needs to rebuild the model."""
    payload = {
        "format": MODEL_FORMAT,
        "version": 1,
        "config": config.to_dict(),
        "plugins": step_plugins(config),
        "round": int(round_index),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "neutral_path": os.fspath(neutral_path),
        "neutral": {
            "params": neutral.params.detach().cpu().numpy(),
            "box": int(neutral.box),
            "pixel_size_angstrom": float(neutral.pixel_size_angstrom),
            "box_centre_world_angstrom": np.asarray(neutral.box_centre_world_angstrom),
            "extras": {k: np.asarray(v) for k, v in neutral.extras.items()},
        },
    }
    with atomic_write_path(path) as tmp:
        torch.save(payload, tmp)


@dataclass
class TrainedRun:
    """A finished run: ``model`` (HeteroModel, eval mode, CPU), ``neutral`` GMM, ``config``
    (RunConfig), ``latent`` (``(n, d)`` or ``(n, K, d)``), ``run_dir``, ``steps`` (forward
    model, loss and regularizers of the last round)."""

    model: torch.nn.Module
    neutral: object
    config: object
    latent: np.ndarray | None
    run_dir: str
    steps: object = None

    def losses(self):
        return read_losses(os.path.join(self.run_dir, "losses.csv"))


def _import_recorded_plugins(plugins: list, config: dict, path) -> None:
    """Import the plugins a run was trained with when a step it names is not registered yet
    (a plugin given again with ``--plugin`` is not imported twice)."""
    names = [(ENCODERS, config["encoder"]["kind"]), (PROJECTORS, config["projector"])]
    names += [(DECODERS, spec["kind"]) for spec in config["decoders"].values()]
    for r in config["rounds"]:
        names += [(LOSSES, r["loss"]["kind"])] + [(REGULARIZERS, s["kind"]) for s in r["regularizers"]]
    if plugins and any(name not in registry for registry, name in names):
        try:
            import_plugins(plugins)
        except InputError as exc:
            raise InputError(path, f"the run was trained with plugin(s) {', '.join(plugins)}: {exc}") from None


def load_run(run_dir: str | os.PathLike, device: str = "cpu") -> TrainedRun:
    """Rebuild the model of a finished run from ``RUN_DIR/model.pt`` (+ ``latent.npy``)."""
    path = os.path.join(run_dir, "model.pt")
    if not os.path.isfile(path):
        raise InputError(path, "no model.pt: the run has not finished (resume it with --resume)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(path, f"not a readable model file ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(path, "not a gmmplat run model")
    n = payload["neutral"]
    neutral = GMM(torch.as_tensor(n["params"]), n["box"], n["pixel_size_angstrom"], n["box_centre_world_angstrom"],
                  dict(n["extras"]))
    _import_recorded_plugins(payload.get("plugins", []), payload["config"], path)
    config = RunConfig.from_dict(payload["config"])
    model, _, _, steps, _ = build_model_for_round(config, neutral, payload["round"])
    model.load_state_dict(payload["state_dict"])
    model.to(device).eval()
    latent_path = os.path.join(run_dir, "latent.npy")
    try:
        latent = np.load(latent_path, allow_pickle=False) if os.path.isfile(latent_path) else None
    except (ValueError, EOFError):
        latent = None  # unreadable: callers that need it report the file (gmmplat.analysis.runs)
    return TrainedRun(model, neutral, config, latent, os.fspath(run_dir), steps)
