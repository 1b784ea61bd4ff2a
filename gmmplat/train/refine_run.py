"""Latent refinement of a run folder: the trainer's last step and ``gmmplat refine``.

:func:`refine_run_latent` refines the encoder's latent points of a run
(:mod:`gmmplat.refine.latent`) and writes, each file atomically:

* ``latent_encoder.npy``: the encoder's points (the input);
* ``latent_cycle.npy``: after refinement cycles (:mod:`gmmplat.train.schedule`), the last cycle's
  latent, which the decoders trained on; ``gmmplat refine`` starts from it instead of the encoder's;
* ``latent.npy``: the refined points, or the starting points (the encoder's or the cycle's) when
  the refined ones keep under :data:`MIN_VARIANCE_KEPT` of the latent's spread;
* ``refine.json``: the record (:meth:`gmmplat.refine.latent.Refinement.summary`) with
  ``latent_npy`` (``"refined"``, ``"encoder"`` or ``"cycle"``) and, after cycles, ``cycles``
  (one record per cycle);
* ``quality.npy``, ``fit_scale.npy``, ``fit_bfactor.npy``: ``(n_particles,)`` float32, each particle's
  fit quality (the log-likelihood gain of its image under the decoded GMM over the noise model alone),
  the scale of that fit (:func:`gmmplat.refine.latent.fit_quality`, :mod:`gmmplat.analysis.quality`)
  and the B-factor (Å²) of the envelope at which it fits best (:mod:`gmmplat.refine.envelope`; NaN
  where nothing fits); symmetry copies: the best copy's; in STAR order;
* ``pose_correction.npy``: after cycles with pose refinement (``refine.pose_steps``), ``(n_items, 5)``
  float32: each item's rotation vector (degrees, applied on the left of the stated matrix) and origin
  correction (Å) (:mod:`gmmplat.refine.poses`).

Layout: ``(n_particles, d)``, or ``(n_particles, K, d)`` for symmetry-expanded runs (item
``i`` of the dataset is particle ``i // K``, copy ``i % K``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import save_npy, write_json

__all__ = ["MIN_VARIANCE_KEPT", "refine_run_latent", "write_refined_outputs", "write_cycle_outputs", "save_quality"]

#: Below this share of the encoder latent's spread kept by the refined points, latent.npy keeps the
#: encoder's points (refine.json says which): the decoders then tell the anchors hardly apart (a run
#: of a few particles or epochs: 0.00–0.01 in the notebooks' smoke setting), and the posterior means
#: would all sit near the prior mean.  The demo runs keep 49–84 %.
MIN_VARIANCE_KEPT = 0.1


def _layout(z: np.ndarray, dataset) -> np.ndarray:
    """``z (n_items, d)`` as saved: ``(n_particles, K, d)`` for ``K`` > 1 symmetry copies, float32."""
    z = np.asarray(z, dtype=np.float32)
    n, K = dataset.n_particles, dataset.n_sym
    return z.reshape(n, K, -1) if K > 1 else z


def save_quality(run_dir, dataset, refinement) -> None:
    """Write ``quality.npy``, ``fit_scale.npy`` and ``fit_bfactor.npy`` ``(n_particles,)`` of a
    :class:`~gmmplat.refine.latent.Refinement`: per particle, its best symmetry copy's."""
    if refinement is None or refinement.quality is None:
        return
    shape = (dataset.n_particles, dataset.n_sym)
    q = np.asarray(refinement.quality, dtype=np.float32).reshape(shape)
    best = q.argmax(1)
    rows = np.arange(shape[0])
    save_npy(Path(run_dir) / "quality.npy", q[rows, best])
    save_npy(Path(run_dir) / "fit_scale.npy", np.asarray(refinement.fitted_scale, np.float32).reshape(shape)[rows, best])
    if refinement.fitted_bfactor is not None:
        save_npy(Path(run_dir) / "fit_bfactor.npy",
                 np.asarray(refinement.fitted_bfactor, np.float32).reshape(shape)[rows, best])


def refine_run_latent(run_dir, decode, dataset, z_items: np.ndarray, *, anchors: int, high_res_angstrom,
                      temperature: float, projector: str, seed: int, anchor_stretch: float = 1.0,
                      anchor_source: np.ndarray | None = None, cycles: list | None = None, batch_size: int = 128,
                      device="cpu", progress: bool = False, say=print, **options) -> tuple[np.ndarray, dict]:
    """Refine ``z_items (n_items, d)`` (the encoder's, in dataset item order) and write the run's files.

    ``options``: further keywords of :func:`gmmplat.refine.latent.refine_latent` (the pose samples).

    ``anchor_source (n_items, d)``: the points to start from instead (the last refinement cycle's,
    saved as ``latent_cycle.npy``), with ``cycles`` their records for ``refine.json``.

    Returns ``(z written to latent.npy (n_items, d), refine.json's dict)``; ``say`` gets one line when
    the encoder's points are kept (always) and a summary line when ``progress``.
    """
    from ..refine.latent import refine_latent

    start, label = z_items, "encoder"
    if anchor_source is not None:
        start, label = anchor_source, "cycle"
    result = refine_latent(decode, dataset, np.asarray(start, dtype=np.float32), n_anchors=anchors,
                           anchor_stretch=anchor_stretch, temperature=temperature, high_res_angstrom=high_res_angstrom,
                           projector=projector, seed=seed, batch_size=batch_size, device=device, progress=progress,
                           **options)
    return write_refined_outputs(run_dir, dataset, z_items, start, label, result, cycles, progress=progress, say=say)


def write_refined_outputs(run_dir, dataset, z_items: np.ndarray, start: np.ndarray, label: str, result,
                          cycles: list | None = None, *, progress: bool = False, say=print) -> tuple[np.ndarray, dict]:
    """The files of a run whose latent is a refinement's (``result``, a
    :class:`~gmmplat.refine.latent.Refinement` of the points ``start``, labelled ``label``: "encoder"
    or "cycle"), each atomically; ``cycles``: the records of the cycles before it.  Returns ``(z
    written to latent.npy (n_items, d), refine.json's dict)``."""
    run_dir = Path(run_dir)

    def layout(z):
        return _layout(z, dataset)

    z_items, start = np.asarray(z_items, dtype=np.float32), np.asarray(start, dtype=np.float32)
    save_npy(run_dir / "latent_encoder.npy", layout(z_items))
    if label == "cycle":
        save_npy(run_dir / "latent_cycle.npy", layout(start))
    summary = result.summary()
    if cycles is not None:
        summary["cycles"] = cycles
    kept = result.variance_kept
    summary["latent_npy"] = "refined" if kept >= MIN_VARIANCE_KEPT else label
    z = result.latent if summary["latent_npy"] == "refined" else start
    save_npy(run_dir / "latent.npy", layout(z))
    save_quality(run_dir, dataset, result)
    write_json(run_dir / "refine.json", summary)
    if summary["latent_npy"] != "refined":
        say(f"latent refinement: the decoded states hardly differ (the refined points keep {kept:.1%} of the "
            f"latent's spread, under {MIN_VARIANCE_KEPT:.0%}); latent.npy holds the {label}'s points")
    elif progress:
        say(f"latent refined: {summary['n_anchors']} anchors, mean posterior entropy "
            f"{summary['mean_posterior_entropy']:.2f}, {kept:.0%} of the latent's spread kept, "
            f"{summary['seconds']:.1f} s")
    return z, summary


def write_cycle_outputs(run_dir, dataset, z_items: np.ndarray, z_cycle: np.ndarray, summary: dict,
                        refinement=None) -> None:
    """The files of a run trained with refinement cycles (:mod:`gmmplat.train.schedule`), each atomically.

    ``latent_encoder.npy``: the encoder's points ``z_items (n_items, d)``; ``latent_cycle.npy`` and
    ``latent.npy``: the last cycle's latent ``z_cycle``, the points the decoders were trained on (a
    refinement after the last cycle would move them off that latent: docs/training.md, "Refinement
    cycles"); ``refine.json``: the last cycle's refinement ``summary`` with ``latent_npy`` "cycle".
    """
    run_dir = Path(run_dir)

    def layout(z):
        return _layout(z, dataset)

    save_npy(run_dir / "latent_encoder.npy", layout(z_items))
    save_npy(run_dir / "latent_cycle.npy", layout(z_cycle))
    save_npy(run_dir / "latent.npy", layout(z_cycle))
    save_quality(run_dir, dataset, refinement)
    if dataset.pose_corrections is not None:
        save_npy(run_dir / "pose_correction.npy", dataset.pose_corrections.as_array())
    write_json(run_dir / "refine.json", {**summary, "latent_npy": "cycle"})
