"""Per-particle fit quality (``quality.npy`` of a run) and a junk threshold chosen from its distribution.

A run with latent refinement writes ``quality.npy``: for each particle (STAR order) the
log-likelihood gain ``q`` of its image under the decoded GMM at its most probable state over the
noise model alone (:func:`gmmplat.refine.latent.fit_quality`; higher fits better), and
``fit_scale.npy``: the scale at which that prediction fits the image best, ``q`` divided by the
prediction's own whitened power (so it does not grow with the CTF's or the particle's contrast).
``fit_bfactor.npy``: the B-factor (Å²) of the envelope ``exp(−B|k|²/4)`` at which that prediction
fits best, beyond the fall-off it already has (:mod:`gmmplat.refine.envelope`; NaN where nothing fits).

``q`` ranks junk below particles, but how much signal a particle has depends on its defocus; the
fitted scale does not, which makes it the one to threshold: :func:`junk_mask` calls junk what
fits at under a share of the median scale.  ``gmmplat select --exclude-junk`` uses it and prints
the threshold; ``--quality-above Q`` takes a threshold of the user's on ``q``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..refine.latent import DEFAULT_JUNK_SCALE, junk_mask  # noqa: F401 (re-exported)

QUALITY_FILE = "quality.npy"
SCALE_FILE = "fit_scale.npy"
BFACTOR_FILE = "fit_bfactor.npy"


def load_quality(run_dir: str | os.PathLike, n_particles: int | None = None) -> np.ndarray:
    """``(n_particles,)`` float64 quality of a run; one-line :class:`InputError` when missing or unusable."""
    return _load_vector(Path(run_dir) / QUALITY_FILE, n_particles, "quality")


def _load_vector(path: Path, n_particles: int | None, what: str) -> np.ndarray:
    if not path.is_file():
        raise InputError(path, f"no {what} in this run: it is written by the latent refinement (a run "
                               "trained with refinement, or gmmplat refine --run RUN)")
    try:
        q = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputError(path, f"not a {what} file (.npy of one number per particle)") from None
    if not isinstance(q, np.ndarray) or q.ndim != 1 or q.dtype.kind != "f":
        raise InputError(path, f"not a {what} file (.npy of one number per particle)")
    if n_particles is not None and len(q) != n_particles:
        raise InputError(path, f"has {len(q)} values but the run's particle file has {n_particles} particles")
    return q.astype(np.float64)


def load_fit_scale(run_dir: str | os.PathLike, n_particles: int | None = None) -> np.ndarray:
    """``(n_particles,)`` fitted scale of a run (``fit_scale.npy``); one-line :class:`InputError` when unusable."""
    return _load_vector(Path(run_dir) / SCALE_FILE, n_particles, "fitted scale")


def load_fit_bfactor(run_dir: str | os.PathLike, n_particles: int | None = None) -> np.ndarray:
    """``(n_particles,)`` fitted B-factor (Å², NaN where nothing fits) of a run (``fit_bfactor.npy``);
    one-line :class:`InputError` when unusable."""
    return _load_vector(Path(run_dir) / BFACTOR_FILE, n_particles, "fitted B-factor")
