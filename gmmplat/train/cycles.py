"""Refinement cycles: the decoders trained again on their own refined latent, a few times.

A decoder trained on the encoder's latent learns the mean structure of the particles that share
a latent point.  At low SNR that point is noisy, so the mean blurs neighbouring states and the
decoded motion falls short at its ends.  The refinement (:mod:`gmmplat.latent_refine`) places each
particle by the likelihood of its image under the decoded states, but those states are the blurred
ones.  Alternating the two converges, as the M and E steps of an EM:

1. refine the latent with the current decoders, anchors stretched by ``cycle_stretch``
   (:func:`gmmplat.latent_refine.anchor_points`), from the previous cycle's latent (the encoder's
   in the first cycle), on ``cycle_anchors`` anchors (``anchors`` when null; the last cycle always
   on ``anchors``);
2. project it onto its leading principal axes (:func:`gmmplat.latent_refine.principal_subspace`;
   the Kaiser rule unless ``components`` is set): the axes the images do not pin down carry only
   the refinement's scatter, and decoders trained on them place the frame means badly;
3. train the decoders on that latent, held fixed (a :class:`CycleLatent` table instead of the
   encoder), with the config's rounds and ``cycle_epochs``: afresh, or continuing from the previous
   cycle's decoders when ``restart`` is false.

The encoder itself is kept as trained.  The run's latent is the last cycle's (``latent.npy`` and
``latent_cycle.npy``), the points its decoders were trained on: no refinement follows the last
cycle.  On ``bend`` (docs/benchmarks.md, "Refinement cycles") three cycles take the hierarchical
decoder's morph from 0.80–0.83 Å to 0.50–0.52 Å on average, near its limit on the oracle's latent
(0.50 Å).

Cycles run in the main process only (as the refinement); other processes of a distributed run wait.
"""
from __future__ import annotations

import numpy as np
import torch

from ..encoders.fixed import TableEncoder
from ..errors import ConfigError
from ..latent_refine import junk_mask, principal_subspace, refine_latent
from .builder import assemble_model, build_decoder, configure_trainable
from .config import RunConfig

__all__ = ["CycleLatent", "cycle_rounds", "run_cycles"]


class CycleLatent(TableEncoder):
    """``z[b]`` = row ``index_b · K + sym_index_b`` of a cycle's latent ``(n_items, d)`` (in memory).

    ``K``: symmetry copies per particle (each copy has its own refined point).
    """

    def __init__(self, latent_dim: int, context, latent: np.ndarray, n_sym: int, cycle: int):
        super().__init__(latent_dim, context)
        self.n_sym = int(n_sym)
        self.use_table(latent, f"refinement cycle {cycle}", "latent points", "the cycle's latent is of other particles")

    def forward(self, batch) -> torch.Tensor:
        item = batch.index.to(self.latent.device).long() * self.n_sym + batch.sym_index.to(self.latent.device).long()
        return self.latent[item]


def cycle_rounds(config: RunConfig) -> list[tuple[int, int]]:
    """``[(round index, epochs)]`` a cycle trains: rounds with epochs (``refine.cycle_epochs`` or the
    round's own) and at least one decoder among the modules they train (the encoder is a table)."""
    epochs = config.refine.cycle_epochs or [r.epochs for r in config.rounds]
    plan = [(i, int(e)) for i, (r, e) in enumerate(zip(config.rounds, epochs))
            if e > 0 and any(m != "encoder" for m in r.trained_modules())]
    if not plan:
        raise ConfigError("refine.cycles: no round trains a decoder in the cycles (refine.cycle_epochs and the "
                          "rounds' train lists leave only the encoder, which the cycles hold fixed)")
    missing = [n for n in config.rounds[-1].decoders if n not in config.rounds[plan[-1][0]].decoders]
    if missing:
        raise ConfigError(f"refine.cycle_epochs: decoder(s) {', '.join(missing)} of the last round are not trained "
                          "in the cycles; give the round that adds them epochs")
    return plan


def _refine_poses(trainer, decode, refined) -> dict:
    """Refine every item's pose under the decoded GMM at its refined latent point, from the corrections so far,
    and make the dataset apply the new ones; returns the cycle record's pose entries."""
    import time

    from ..latent_refine import refinement_band
    from ..pose_refine import refine_poses

    ref, data = trainer.config.refine, trainer.dataset
    start = time.perf_counter()
    previous = data.pose_corrections
    data.set_pose_corrections(None)  # refine_poses starts from `previous` itself
    band = refinement_band(data.box, data.pixel_size_angstrom, ref.high_res_angstrom)
    poses = refine_poses(decode, data, refined.latent, refined.noise_per_ring, band, start=previous,
                         projector=trainer.config.projector, steps=ref.pose_steps,
                         rotation_sigma_deg=ref.pose_sigma_deg, shift_sigma_angstrom=ref.pose_sigma_angstrom,
                         batch_size=trainer.eval_batch_size, device=trainer.device, progress=trainer.progress)
    data.set_pose_corrections(poses)
    return {"pose_seconds": round(time.perf_counter() - start, 2),
            **{f"pose_{k}": round(v, 3) for k, v in poses.summary().items()}}


def run_cycles(trainer, model, z_items: np.ndarray) -> tuple[object, np.ndarray, dict, object]:
    """Run ``config.refine.cycles`` cycles for ``trainer`` (a :class:`gmmplat.train.loop.Trainer`).

    Args:
        model: the trained model of the last round (its encoder is kept in the returned model; its
            decoders start the cycles when ``refine.restart`` is false).
        z_items: ``(n_items, d)`` the encoder's latent points in dataset item order.

    Returns ``(model with the last cycle's decoders and the encoder, last cycle's latent (n_items, d),
    the last refinement's :meth:`~gmmplat.latent_refine.Refinement.summary` with ``cycles``, one record
    per cycle, and that :class:`~gmmplat.latent_refine.Refinement`)``; history rows are appended to
    ``trainer.history``.  With ``refine.pose_steps``, each cycle but the last refines the poses after the
    latent (:mod:`gmmplat.pose_refine`) and the dataset applies them from then on.  With ``refine.junk_scale``, each cycle's decoders train, and the next
    refinement places its anchors, on the items not found junk (:func:`gmmplat.latent_refine.junk_mask`).
    """
    cfg, ref = trainer.config, trainer.config.refine
    plan = cycle_rounds(cfg)
    source = np.asarray(z_items, np.float32)
    records, encoder, decode = [], model.encoder, model.decode
    n_rounds = len(cfg.rounds)
    last = n_rounds - 1
    trained = dict(zip([n for n in cfg.decoder_order() if n in cfg.rounds[last].decoders], model.decoder.decoders))
    anchors = [ref.cycle_anchors or ref.anchors] * (ref.cycles - 1) + [ref.anchors]
    particle = None  # items not found junk, after the first refinement (refine.junk_scale)
    for c in range(1, ref.cycles + 1):
        refined = refine_latent(decode, trainer.dataset, source, n_anchors=anchors[c - 1],
                                anchor_stretch=ref.cycle_stretch, temperature=ref.temperature,
                                high_res_angstrom=ref.high_res_angstrom, projector=cfg.projector, seed=cfg.seed,
                                batch_size=trainer.eval_batch_size, device=trainer.device, progress=trainer.progress,
                                anchor_mask=particle)
        pose_record = {}
        if ref.pose_steps and c < ref.cycles:  # the last cycle's latent is refined already: its poses would
            pose_record = _refine_poses(trainer, decode, refined)  # reach only its decoder epochs
        source, kept = principal_subspace(refined.latent, ref.components)
        train_items, n_junk = trainer.train_items, 0
        if ref.junk_scale:
            particle = ~junk_mask(refined.fitted_scale, ref.junk_scale)[0]
            train_items = trainer.train_items[particle[trainer.train_items]]
            n_junk = int((~particle).sum())
        table = CycleLatent(cfg.latent_dim, trainer.steps[plan[0][0]].context, source, trainer.dataset.n_sym, c)
        decoders: dict = {} if ref.restart else trained
        seconds = refined.seconds
        for r, epochs in plan:
            steps = trainer.steps[r]
            table.set_context(steps.context)
            for name in cfg.rounds[r].decoders:
                if name not in decoders:
                    decoders[name] = build_decoder(cfg, name, trainer.neutral)
            params = configure_trainable(cfg, r, table, decoders)
            model = assemble_model(cfg, table, decoders, r, trainer.neutral).to(trainer.device)
            for m in steps.modules():
                m.to(trainer.device)
            optimizer = torch.optim.Adam(params, lr=cfg.rounds[r].learning_rate)
            for e in range(epochs):
                with torch.enable_grad():  # the trainer's last step runs under no_grad
                    row = trainer._epoch(r, e, model, model, optimizer, steps, "", cycle=c, epochs=epochs,
                                         history_round=c * n_rounds + r + 1, items=train_items)
                trainer.history.append(row)
                seconds += row["seconds"]
        summary = refined.summary()
        records.append({"cycle": c, "anchors": int(anchors[c - 1]), "components": int(kept), "junk_left_out": n_junk,
                        **pose_record,
                        "mean_posterior_entropy": summary["mean_posterior_entropy"],
                        "variance_kept": refined.variance_kept, "refine_seconds": round(float(refined.seconds), 2),
                        "seconds": round(float(seconds), 2)})
        decode, trained = model.decode, decoders
    final = assemble_model(cfg, encoder, trained, last, trainer.neutral).to(trainer.device)  # the run's structure
    return final, source, {**summary, "cycles": records}, refined
