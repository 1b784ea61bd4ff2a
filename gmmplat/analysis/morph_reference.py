"""Morphing relative to a reference latent point: the decoded motion, without the decoder's constant offset.

A run's decoders move the neutral GMM, which was refined against the consensus map: the
average over every particle's state.  Where the states differ, that average is blurred
(a bending bundle's ends spread into an arc, a turning domain smeared), and no single
particle looks like it.  The decoders therefore learn a latent-independent correction
on top of the motion.  :class:`~gmmplat.analysis.morph.ModelMorpher` carries offsets
*from the neutral GMM* onto the atoms, so that correction lands on an atomic model that is
already a sharp single state and can take it further from the true frames than the
unmorphed model (docs/benchmarks.md, "The morph's reference point").

:func:`run_morpher` instead takes the decoded GMM at a reference latent point
(default, ``"median"``: the smoothed median of the particles' latent points,
:func:`reference_latent`, the centre of the distribution, the state the consensus map and the
model fitted into it stand for) as the source of
the motion: an atom follows the Gaussians from their decoded reference positions to
their decoded positions at ``z``, so ``z = z_ref`` returns the model unchanged.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from ..model.gmm import XYZ
from .evaluate import particle_latent
from .morph import ModelMorpher

REFERENCES = ("median", "neutral")


#: The reference point is the median smoothed over the central fifth of the points: in each
#: dimension the mean of the points between the 40th and the 60th percentile.
MEDIAN_TRIM = 0.4


def reference_latent(latent: np.ndarray) -> np.ndarray:
    """``(d,)`` the per-dimension smoothed median of the particles' latent points (copy 0 of
    expanded latents): the mean of the central fifth (:data:`MEDIAN_TRIM` cut from each end).

    A refined latent holds posterior means over a few dozen anchors, so its points gather in
    clusters, and a plain median lands inside whichever cluster holds the middle point: from run
    to run (seeds, threads) a few hundredths of the latent's spread off its centre, and the morph of
    every frame moves with it.  The central fifth's mean spans the neighbouring clusters
    (docs/benchmarks.md, "The morph's reference point").
    """
    from scipy.stats import trim_mean

    return np.asarray(trim_mean(particle_latent(latent), MEDIAN_TRIM, axis=0), dtype=np.float64)


def reference_latent_of(ar) -> np.ndarray:
    """``(d,)`` the reference point of a run: the smoothed median (:func:`reference_latent`) of the
    encoder's latent points, or of the last refinement cycle's (``latent_cycle.npy``, which the
    decoders of a run with cycles were trained on).

    A run with latent refinement keeps them in ``latent_encoder.npy`` (``latent.npy`` holds the
    refined points, posterior means over a few dozen anchors, whose per-dimension median jumps
    between anchors and the morph with it; docs/benchmarks.md, "The morph's reference point").
    Without that file, or when ``ar`` was loaded from another latent file, ``ar.latent``.
    A ``latent_encoder.npy`` (``latent_cycle.npy``) that is unreadable or of another shape than the
    latent is a one-line :class:`InputError` naming it.
    """
    from pathlib import Path

    from ..errors import InputError
    from ..records import read_latent

    run_dir = Path(ar.run.run_dir)
    path = run_dir / "latent_encoder.npy"
    if (run_dir / "latent_cycle.npy").is_file():  # the decoders were trained on the last cycle's latent
        path = run_dir / "latent_cycle.npy"
    if not path.is_file() or Path(ar.latent_path).name != "latent.npy":
        return reference_latent(ar.latent)
    z = read_latent(path)
    if z.shape != np.shape(ar.latent):
        raise InputError(path, f"shape {z.shape} differs from the run's latent.npy {np.shape(ar.latent)}")
    return reference_latent(z)


def reference_gmm(neutral, decode_fn, z_ref: np.ndarray):
    """A copy of ``neutral`` whose Gaussian centres are the decoded ones at ``z_ref (d,)``."""
    with torch.no_grad():
        decoded = decode_fn(torch.as_tensor(np.asarray(z_ref, dtype=np.float32)[None]))[0]
    out = copy.copy(neutral)
    params = neutral.params.detach().clone()
    params[:, XYZ] = decoded[:, XYZ].to(params.dtype)
    out.params = params
    return out


def run_morpher(ar, model, reference: str = "median", **kw) -> ModelMorpher:
    """A :class:`ModelMorpher` for run ``ar`` (:class:`~gmmplat.analysis.runs.AnalysisRun`) and ``model``.

    ``reference``: ``"median"`` (motion from the decoded GMM at :func:`reference_latent`) or
    ``"neutral"`` (offsets from the neutral GMM, as :class:`ModelMorpher` alone).  ``kw`` go
    to :class:`ModelMorpher` (``s_angstrom``, ``mode``, ...).
    """
    from ..errors import ConfigError

    if reference not in REFERENCES:
        raise ConfigError(f"unknown morph reference {reference!r}; use one of {', '.join(REFERENCES)}")
    source = ar.neutral if reference == "neutral" else reference_gmm(ar.neutral, ar.decode_fn,
                                                                      reference_latent_of(ar))
    return ModelMorpher(source, model, **kw)
