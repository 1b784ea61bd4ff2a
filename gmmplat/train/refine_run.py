"""Latent refinement of a run folder: the trainer's last step and ``gmmplat refine``.

:func:`refine_run_latent` refines the encoder's latent points of a run
(:mod:`gmmplat.latent_refine`) and writes, each file atomically:

* ``latent_encoder.npy``: the encoder's points (the input);
* ``latent.npy``: the refined points, or the encoder's when the refined ones keep under
  :data:`MIN_VARIANCE_KEPT` of the latent's spread;
* ``refine.json``: the record (:meth:`gmmplat.latent_refine.Refinement.summary`) with
  ``latent_npy`` (``"refined"`` or ``"encoder"``).

Layout: ``(n_particles, d)``, or ``(n_particles, K, d)`` for symmetry-expanded runs (item
``i`` of the dataset is particle ``i // K``, copy ``i % K``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.atomic import save_npy, write_json

__all__ = ["MIN_VARIANCE_KEPT", "refine_run_latent"]

#: Below this share of the encoder latent's spread kept by the refined points, latent.npy keeps the
#: encoder's points (refine.json says which): the decoders then tell the anchors hardly apart (a run
#: of a few particles or epochs: 0.00–0.01 in the notebooks' smoke setting), and the posterior means
#: would all sit near the prior mean.  The demo runs keep 49–84 %.
MIN_VARIANCE_KEPT = 0.1


def refine_run_latent(run_dir, decode, dataset, z_items: np.ndarray, *, anchors: int, high_res_angstrom,
                      temperature: float, projector: str, seed: int, batch_size: int = 128, device="cpu",
                      progress: bool = False, say=print) -> tuple[np.ndarray, dict]:
    """Refine ``z_items (n_items, d)`` (the encoder's, in dataset item order) and write the run's files.

    Returns ``(z written to latent.npy (n_items, d), refine.json's dict)``; ``say`` gets one line when
    the encoder's points are kept (always) and a summary line when ``progress``.
    """
    from ..latent_refine import refine_latent

    run_dir = Path(run_dir)
    n, K = dataset.n_particles, dataset.n_sym

    def layout(z):
        return z.reshape(n, K, -1) if K > 1 else z

    z_items = np.asarray(z_items, dtype=np.float32)
    save_npy(run_dir / "latent_encoder.npy", layout(z_items))
    result = refine_latent(decode, dataset, z_items, n_anchors=anchors, temperature=temperature,
                           high_res_angstrom=high_res_angstrom, projector=projector, seed=seed,
                           batch_size=batch_size, device=device, progress=progress)
    summary = result.summary()
    kept = result.variance_kept
    summary["latent_npy"] = "refined" if kept >= MIN_VARIANCE_KEPT else "encoder"
    z = result.latent if summary["latent_npy"] == "refined" else z_items
    save_npy(run_dir / "latent.npy", layout(z))
    write_json(run_dir / "refine.json", summary)
    if summary["latent_npy"] == "encoder":
        say(f"latent refinement: the decoded states hardly differ (the refined points keep {kept:.1%} of the "
            f"latent's spread, under {MIN_VARIANCE_KEPT:.0%}); latent.npy holds the encoder's points")
    elif progress:
        say(f"latent refined: {summary['n_anchors']} anchors, mean posterior entropy "
            f"{summary['mean_posterior_entropy']:.2f}, {kept:.0%} of the latent's spread kept, "
            f"{summary['seconds']:.1f} s")
    return z, summary
