"""Checkpoints of a training run (``checkpoint.pt``), written atomically after every epoch.

A checkpoint holds everything needed to continue exactly where the run stood
at the end of an epoch:

* ``format`` = ``"gmmplat-checkpoint"``, ``version``
* ``config_hash``: hash of the run configuration (a resume with another one is refused)
* ``round`` (0-based) and ``epoch`` (epochs *completed* in that round, >= 1)
* ``model``: state dict of the model as built for that round
* ``optimizer``: Adam state of that round
* ``rng``: torch, numpy and python random states
* ``history``: per-epoch loss rows written so far (rebuilds ``losses.csv``)
* ``partial`` (only inside an epoch, ``--checkpoint-every``): the batches done in the next epoch,
  their loss sums and seconds, and the random state after them

Because the data order and the latent noise of an epoch depend only on
``(seed, round, epoch)``, continuing from the checkpoint of epoch ``e``
reproduces the uninterrupted run (on CPU, bit for bit).  A run killed in the
middle of writing leaves the previous checkpoint intact (atomic rename).
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from ..errors import InputError
from ..io.atomic import atomic_write_path

__all__ = ["FORMAT", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]

FORMAT = "gmmplat-checkpoint"
VERSION = 1


def rng_state() -> dict:
    """Current random states of torch (CPU, and CUDA when present), numpy and python."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, *, config_hash: str, round_index: int, epoch: int,
                    model_state: dict, optimizer_state: dict, history: list, extra: dict | None = None) -> None:
    """Write ``path`` atomically (temporary file + rename)."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config_hash": config_hash,
        "round": int(round_index),
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in model_state.items()},
        "optimizer": optimizer_state,
        "rng": rng_state(),
        "history": list(history),
        **(extra or {}),
    }
    with atomic_write_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint (InputError if it is not one)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated / foreign file
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, "not a gmmplat checkpoint")
    return payload
