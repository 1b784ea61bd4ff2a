"""The trainer: rounds of Adam epochs over streamed particles, with checkpoints and resume.

One training step (docs/design.md)::

    z = encoder(batch)                       (B, d)
    params = neutral + Σ_k decoder_k(z + σ ε)  (B, N, 5)    σ = latent_noise_std
    predicted = image_model.predict(params, batch)           band -> CTF -> projector (gmmplat.physics.image_model)
    loss = mean_b loss(predicted, observed) + Σ regularizers(params) + latent_penalty_term(z)

Determinism: the order of the batches of epoch ``e`` of round ``r`` is drawn
from ``(seed, r, e)``; the noise ``ε`` of global batch ``b`` from
``(seed, r, e, b)`` (drawn for the whole global batch, then sharded, so
distributed runs see the same noise as one process); any other randomness
(e.g. dropout) from the torch generator reseeded with ``(seed, r, e, rank)``.
Nothing depends on history, so resuming from the checkpoint of an epoch
replays the uninterrupted run.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..allocator import keep_freed_memory
from ..errors import ConfigError, GmmplatError
from ..io.atomic import save_npy, write_json
from ..io.dataset import shard
from ..model.gmm import GMM
from .builder import (RoundSteps, assemble_model, build_decoder, build_encoder, build_round_steps,
                      configure_trainable, derive_seed, step_plugins)
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import RunConfig
from .distributed import DistContext, single_process
from .outputs import environment, plot_losses, read_losses, save_model, write_losses
from .refine_run import write_cycle_outputs, write_refined_outputs
from .schedule import build_schedule, check_distributed, count_cycles
from .stages import ScheduleState

__all__ = ["TrainingDiverged", "TrainResult", "Trainer", "train", "validate_config"]


class TrainingDiverged(GmmplatError):
    """The loss or a gradient became NaN/inf; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    out_dir: str
    history: list = field(default_factory=list)


def _first_difference(a, b, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}{k} only in {'the new' if k in b else 'the old'} configuration"
            d = _first_difference(a[k], b[k], f"{path}{k}.")
            if d:
                return d
        return ""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path.rstrip('.')} has {len(a)} entries, now {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path.rstrip('.')}[{i}].")
            if d:
                return d
        return ""
    return "" if a == b else f"{path.rstrip('.')} was {a!r}, now {b!r}"


def _build_checked(fn, where: str):
    try:
        return fn()
    except (TypeError, ValueError) as exc:  # unknown or bad options of a step
        raise ConfigError(f"{where}: {' '.join(str(exc).split())}") from None


def validate_config(config: RunConfig, neutral: GMM) -> list[RoundSteps]:
    """Build every step of every round once (on CPU) so that a bad name, option, band,
    mask, freeze pattern or stage fails before training starts (ConfigError naming the place).

    Returns the steps of every round (forward model, loss, regularizers: no trained weights)."""
    return _checked_build(config, neutral)[0]


def _checked_build(config: RunConfig, neutral: GMM) -> tuple[list[RoundSteps], nn.Module, dict, list]:
    """``(steps of every round, encoder, decoders by name, stages)``, each built once and checked;
    the trainer trains these very modules (seeded: the same as built afresh)."""
    config.check_bands(neutral.box, neutral.pixel_size_angstrom)
    steps = [_build_checked(lambda i=i: build_round_steps(config, i, neutral), f"rounds[{i}]")
             for i in range(len(config.rounds))]
    encoder = _build_checked(lambda: build_encoder(config, neutral, steps[0]), "encoder")
    decoders = {n: _build_checked(lambda n=n: build_decoder(config, n, neutral), f"decoders.{n}")
                for n in config.decoder_order()}
    for i in range(len(config.rounds)):
        encoder.set_context(steps[i].context)
        configure_trainable(config, i, encoder, decoders)
        _build_checked(lambda i=i: assemble_model(config, encoder, decoders, i, neutral), f"rounds[{i}]")
    return steps, encoder, decoders, build_schedule(config)


class Trainer:
    """Trains a :class:`RunConfig` on ``config.data`` into ``out_dir``.

    Args:
        config: the run (``config.data`` names the STAR file, GMM, symmetry, contrast).
        out_dir: run folder (created).  A folder that holds a run is refused unless ``resume``.
        resume: continue from ``checkpoint.pt`` (the configuration must be the same).
        device: "cpu", "cuda" or "cuda:N"; under torchrun each process uses ``cuda:LOCAL_RANK``.
        progress: tqdm bar (rank 0) with the running loss, and one line per epoch.
        num_workers: read-ahead worker processes for images (0: read in this process).
        command_line: saved in environment.json (default ``sys.argv``).
        dist: the process group (default: one process).
        cache_mb: image cache of the dataset; check_images: scan all images before training.
    """

    def __init__(self, config: RunConfig, out_dir: str | os.PathLike, *, resume: bool = False,
                 device: str = "cpu", progress: bool = True, num_workers: int = 0,
                 command_line: list[str] | None = None, dist: DistContext | None = None,
                 cache_mb: float = 256.0, check_images: bool = False, eval_batch_size: int = 128,
                 checkpoint_batches: int = 0):
        from ..io.dataset import ParticleDataset

        self.config = config
        self.out = Path(out_dir)
        self.resume = resume
        self.dist = dist or single_process()
        dev = torch.device(device)
        if dev.type == "cuda" and self.dist.distributed:
            dev = torch.device("cuda", self.dist.local_rank)
        self.device = dev
        self.progress = progress
        self.num_workers = int(num_workers)
        self.command_line = command_line
        self.eval_batch_size = int(eval_batch_size)
        if int(checkpoint_batches) < 0:
            raise ConfigError(f"checkpoint every: a number of batches ≥ 0 (0: after each epoch), got {checkpoint_batches}")
        # also within a training round's epoch, every that many batches: at 10⁵–10⁶ particles an epoch is
        # hours, and a run stopped inside one would lose it (the paper checkpoints between chunks)
        self.checkpoint_batches = int(checkpoint_batches)
        self._state = None
        data = config.data
        if not data.star or not data.gmm:
            raise ConfigError("the configuration names no particles (data.star) or no neutral GMM (data.gmm)")
        self.neutral = GMM.load(data.gmm)
        self.dataset = ParticleDataset(data.source(), invert_contrast=data.invert_contrast, symmetry=data.symmetry,
                                       cache_mb=cache_mb)
        self.dataset.check_gmm(self.neutral, data.gmm)
        self.steps, self.encoder, self._unused_decoders, self.stages = _checked_build(config, self.neutral)
        check_distributed(self.stages, self.dist.world_size)
        if check_images:
            self.dataset.check_images()
        self.train_items, self.val_items = self.dataset.split(config.validation_fraction, config.seed)
        if self.train_items.size < self.dist.world_size:
            raise ConfigError(f"only {self.train_items.size} training item(s) for {self.dist.world_size} processes")
        self.hash = config.hash()
        self.history: list[dict] = []
        self.last_good = ""
        self.stage_seconds: list[tuple[int, str, float]] = []  # (stage index, kind, wall seconds) as run

    # ------------------------------------------------------------ folder
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def _prepare_folder(self) -> dict | None:
        """Check the folder against resume/config; return the checkpoint to continue from.

        A folder is a run only once it holds ``checkpoint.pt``: the ``config.json`` and
        ``environment.json`` of a run that failed before its first epoch do not block a
        new start (with or without ``--resume``).
        """
        from .fingerprint import compare_fingerprint, data_fingerprint

        cfg_path = self.out / "config.json"
        ckpt, previous = None, []
        fingerprint = data_fingerprint(self.dataset)
        if cfg_path.exists() and self.checkpoint_path.exists():
            if not self.resume:
                raise ConfigError(f"{self.out} already holds a run (checkpoint.pt); pass --resume to continue it, "
                                  "--overwrite to replace it, or choose another output folder")
            try:
                old = json.loads(cfg_path.read_text())
            except ValueError:
                raise ConfigError(f"{cfg_path}: unreadable config.json; cannot resume") from None
            if not same_configuration(old, self.config):
                diff = _first_difference(old.get("config", {}), self.config.to_dict()) or "hash differs"
                raise ConfigError(f"cannot resume {self.out}: it was started with a different configuration "
                                  f"({diff}); use another output folder")
            compare_fingerprint(old.get("data_fingerprint"), fingerprint, self.out)
            ckpt = load_checkpoint(self.checkpoint_path)
            known = {old.get("hash"), *old.get("previous_hashes", [])}
            if ckpt["config_hash"] != self.hash and ckpt["config_hash"] not in known:
                raise ConfigError(f"cannot resume: {self.checkpoint_path} belongs to another configuration")
            previous = sorted(h for h in known if h and h != self.hash)
        self.dist.barrier()
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            env_path = self.out / "environment.json"
            env = environment(self.config.seed, self.command_line, str(self.device), self.dist.world_size)
            env["plugins"] = step_plugins(self.config)
            if ckpt is not None and env_path.exists():
                first = json.loads(env_path.read_text())
                before = first.get("torch_threads")
                if before is not None and before != env["torch_threads"]:
                    print(f"note: resuming with {env['torch_threads']} torch thread(s); the run started with "
                          f"{before}: results may differ in the last digits (~1e-6) from an uninterrupted run")
                first.setdefault("resumed", []).append(env)
                env = first
            write_json(env_path, env)
            record = {"hash": self.hash, "config": self.config.to_dict(), "data_fingerprint": fingerprint}
            if previous:  # the run's hashes under an earlier gmmplat (its checkpoint may still carry one)
                record["previous_hashes"] = previous
            write_json(cfg_path, record)
        self.dist.barrier()
        return ckpt

    # ------------------------------------------------------------ main
    def run(self) -> TrainResult:
        """Run the schedule's stages in order (from the checkpoint's place when resuming), then write
        the run's latent and model."""
        keep_freed_memory()
        ckpt = self._prepare_folder()
        state = ScheduleState(self, encoder=self.encoder, cycles_total=count_cycles(self.stages))
        start, resume = (0, None) if ckpt is None else self._restore(state, ckpt)
        self._state = state
        collective_done = False
        for i in range(start, len(self.stages)):
            stage = self.stages[i]
            if not stage.all_processes and not collective_done:
                self.encode_items(state)  # every process takes part; then only the main one goes on
                collective_done = True
            if not (stage.all_processes or self.dist.is_main):
                continue
            state.stage_index = i
            t0 = time.perf_counter()
            stage.run(state, resume if i == start else None)
            self.stage_seconds.append((i, stage.registry_name, time.perf_counter() - t0))
            if not stage.trains and self.dist.is_main:
                self._checkpoint(state, i + 1, 0)
        self._finish(state)
        return TrainResult(os.fspath(self.out), list(self.history))

    # ------------------------------------------------------------ services of the stages
    def new_decoder(self, name: str) -> nn.Module:
        """Decoder ``name`` with fresh weights (seeded by the run seed and the name)."""
        built = self._unused_decoders.pop(name, None)  # the one validation built, never trained
        return built if built is not None else build_decoder(self.config, name, self.neutral)

    def resume_epoch(self, resume: dict, model, optimizer) -> int:
        """Load a training stage's checkpoint into its ``model`` and ``optimizer``; the epochs done (a
        checkpoint inside an epoch also carries ``resume["partial"]``, for :meth:`train_epoch`)."""
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        set_rng_state(resume["rng"])
        return int(resume["epoch"])

    def end_epoch(self, state, row: dict, model, optimizer, epochs_done: int, where: str) -> None:
        """After a training stage's epoch: the row in the history, the finiteness check, the checkpoint."""
        self.history.append(row)
        for p in model.parameters():
            if not bool(torch.isfinite(p).all()):
                raise TrainingDiverged(self._diverged_text(where, None, "a parameter"))
        if self.dist.is_main:
            self._checkpoint(state, state.stage_index, epochs_done, model, optimizer)
            write_losses(self.out / "losses.csv", self.history)
            plot_losses(self.out / "losses.png", self.history)
        self.last_good = where
        self.dist.barrier()

    @torch.no_grad()
    def encode_items(self, state) -> np.ndarray:
        """``(n_items, d)`` the encoder's points of every dataset item (every process encodes its
        share; all get the whole), cached in the state until the encoder trains again."""
        if state.encoder_latent is not None:
            return state.encoder_latent
        encoder = state.encoder.to(self.device)
        was_training = encoder.training
        encoder.eval()
        mine = shard(np.arange(len(self.dataset)), self.dist.rank, self.dist.world_size)
        parts = []
        for start in range(0, mine.size, self.eval_batch_size):
            batch = self.dataset.get_batch(mine[start : start + self.eval_batch_size]).to(self.device)
            parts.append(encoder(batch).float().cpu().numpy())
        encoder.train(was_training)
        z_local = np.concatenate(parts) if parts else np.zeros((0, self.config.latent_dim), np.float32)
        z = np.empty((len(self.dataset), self.config.latent_dim), dtype=np.float32)
        for items, values in self.dist.all_gather_objects((mine, z_local)):
            z[items] = values
        state.encoder_latent = z
        return z

    # ------------------------------------------------------------ checkpoints
    def _checkpoint(self, state, stage: int, epoch: int, model=None, optimizer=None, partial: dict | None = None
                    ) -> None:
        """``checkpoint.pt`` at stage ``stage`` after ``epoch`` of its epochs (0: before it starts);
        ``partial``: inside the next epoch, after ``partial["batch"]`` of its batches."""
        spec = self.stages[min(stage, len(self.stages) - 1)]
        save_checkpoint(self.checkpoint_path, config_hash=self.hash, round_index=getattr(spec, "round", -1),
                        epoch=epoch, model_state={} if model is None else model.state_dict(),
                        optimizer_state={} if optimizer is None else optimizer.state_dict(), history=self.history,
                        extra={"stage": int(stage), "encoder": state.encoder.state_dict(),
                               "decoders": {n: d.state_dict() for n, d in state.decoders.items()},
                               "state": state.saved(), "pose_corrections": self.dataset.pose_corrections,
                               **({"partial": partial} if partial else {})})

    def _restore(self, state, ckpt: dict) -> tuple[int, dict | None]:
        """The stage to start from and its resume record; the state, modules and poses as checkpointed."""
        self.history = list(ckpt["history"])
        epoch = int(ckpt["epoch"])
        if "stage" not in ckpt:  # written before schedules: a round and its epochs
            stage = next(i for i, s in enumerate(self.stages) if s.registry_name == "train"
                         and s.round == int(ckpt["round"]))
        else:
            stage = int(ckpt["stage"])
            state.restore(ckpt["state"])
            state.encoder.load_state_dict(ckpt["encoder"])
            for name, values in ckpt["decoders"].items():
                state.decoders[name] = self.new_decoder(name)
                state.decoders[name].load_state_dict(values)
            self.dataset.set_pose_corrections(ckpt.get("pose_corrections"))
            if state.decoders:
                rounds = [r for r, rc in enumerate(self.config.rounds) if set(rc.decoders) <= set(state.decoders)]
                state.model = assemble_model(self.config, state.encoder, state.decoders,
                                             state.last_round if state.last_round in rounds else rounds[-1],
                                             self.neutral).to(self.device)
        spec = self.stages[min(stage, len(self.stages) - 1)]
        partial = ckpt.get("partial")
        self.last_good = (f"round {spec.round + 1}, epoch {epoch + 1}, batch {partial['batch']}" if partial
                          else f"round {spec.round + 1}, epoch {epoch}" if spec.registry_name == "train" and epoch
                          else f"stage {stage + 1}, epoch {epoch}" if epoch else f"before stage {stage + 1}")
        return stage, ({**ckpt, "epoch": epoch} if (epoch or partial) and stage < len(self.stages) else None)

    def _diverged_text(self, where: str, b, what="the loss") -> str:
        where = where + ("" if b is None else f", batch {b + 1}")
        kept = (f"the last good checkpoint ({self.last_good}) is kept in {self.checkpoint_path}" if self.last_good
                else "no checkpoint had been written yet")
        return f"training diverged: {what} became NaN/inf in {where}; {kept}; lower the learning rate of that round"

    # ------------------------------------------------------------ one epoch
    def train_epoch(self, r: int, e: int, model, forward, optimizer, steps: RoundSteps, *,
                    cycle: int = 0, cycles: int = 0, epochs: int | None = None, history_round: int | None = None,
                    items: np.ndarray | None = None, partial: dict | None = None) -> dict:
        """One epoch of round ``r``'s settings; returns its history row.  ``cycle`` > 0: an epoch of a
        fixed-latent stage of that refinement cycle (of ``cycles``; own seeds, one process, ``epochs``
        in the stage, row numbered ``history_round``, trained on ``items``, default the training split).

        A training round's epoch (``cycle`` 0) writes a checkpoint every ``checkpoint_batches`` batches
        (none after its last: the epoch's own follows); ``partial``, the record of one, continues the
        epoch after its batches, with its loss sums, seconds and random state."""
        from tqdm.auto import tqdm

        cfg, rc = self.config, self.config.rounds[r]
        dist = single_process() if cycle else self.dist
        epochs = rc.epochs if epochs is None else epochs
        W, rank = dist.world_size, dist.rank
        d = cfg.latent_dim
        tag = (99, cycle) if cycle else ()  # seed words of a refinement cycle
        items = self.train_items if items is None else items
        batches = _batch_order(items, rc.batch_size, (cfg.seed, 1, r, e, *tag), True, W)
        local = [shard(b, rank, W) for b in batches]
        torch.manual_seed(derive_seed(cfg.seed, "epoch", r, e, rank, *tag))
        model.train()
        t0 = time.perf_counter()
        sums = torch.zeros(3, dtype=torch.float64)
        first, before_s = 0, 0.0
        if partial:
            first, before_s = int(partial["batch"]), float(partial["seconds"])
            sums += torch.as_tensor(partial["sums"], dtype=torch.float64)
            set_rng_state(partial["rng"])
        every = 0 if cycle else self.checkpoint_batches
        name = f"round {r + 1}/{len(cfg.rounds)} epoch {e + 1}/{epochs}"
        name = f"cycle {cycle}/{cycles} {name}" if cycle else name
        where = f"{'cycle %d, ' % cycle if cycle else ''}round {r + 1}, epoch {e + 1}"
        bar = tqdm(total=len(batches), initial=first, desc=name, disable=not (self.progress and dist.is_main),
                   leave=False, dynamic_ncols=True)
        for bi, batch in enumerate(self.dataset.loader(local[first:], self.num_workers), start=first):
            n_global, n_local = len(batches[bi]), len(local[bi])
            g = torch.Generator().manual_seed(derive_seed(cfg.seed, "noise", r, e, bi, *tag))
            eps = shard(torch.randn(n_global, d, generator=g), rank, W).to(self.device)
            total, data = self._losses(batch.to(self.device), model, forward, steps, eps)
            (total * (W * n_local / n_global)).backward()
            stats = torch.tensor([float(total.detach()) * n_local, float(data) * n_local, n_local], dtype=torch.float64)
            dist.all_reduce_sum(stats)
            if not math.isfinite(float(stats[0])):
                bar.close()
                raise TrainingDiverged(self._diverged_text(where, bi))
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            # one fused norm (NaN/inf when any element is): a check per tensor cost ~6 % of a step
            if grads and not math.isfinite(float(torch.nn.utils.get_total_norm(grads))):
                bar.close()
                raise TrainingDiverged(self._diverged_text(where, bi, "a gradient"))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            sums += stats
            bar.update(1)
            bar.set_postfix(loss=f"{float(sums[0] / sums[2]):.4f}")
            if every and (bi + 1) % every == 0 and bi + 1 < len(batches) and dist.is_main:
                self._checkpoint(self._state, self._state.stage_index, e, model, optimizer,
                                 partial={"batch": bi + 1, "sums": sums.tolist(), "rng": rng_state(),
                                          "seconds": before_s + time.perf_counter() - t0})
                self.last_good = f"{where}, batch {bi + 1}"
        bar.close()
        train_s = before_s + time.perf_counter() - t0
        t1 = time.perf_counter()
        val_loss = self._validate(model, steps, rc.batch_size, dist)
        val_s = time.perf_counter() - t1
        global_epoch = len(self.history) + 1 if cycle else sum(c.epochs for c in cfg.rounds[:r]) + e + 1
        row = {
            "round": history_round or r + 1,
            "round_name": f"cycle {cycle}: {rc.name}".rstrip(": ") if cycle else rc.name,
            "epoch": e + 1, "global_epoch": global_epoch,
            "train_loss": float(sums[0] / sums[2]), "train_data_loss": float(sums[1] / sums[2]),
            "val_loss": val_loss, "learning_rate": rc.learning_rate,
            "train_images_per_s": float(sums[2]) / max(train_s, 1e-9),
            "val_images_per_s": (self.val_items.size / max(val_s, 1e-9)) if self.val_items.size else float("nan"),
            "seconds": train_s + val_s,
        }
        if self.progress and dist.is_main:
            tqdm.write(f"{name}: train {row['train_loss']:.5f} "
                       f"validation {val_loss:.5f} ({row['train_images_per_s']:.0f} images/s)")
        return row

    def _losses(self, batch, model, forward, steps: RoundSteps, eps):
        params, z = forward(batch, training=True, noise=eps)
        data = steps.loss(steps.image_model.predict(params, batch), steps.image_model.observe(batch)).mean()
        total = data + model.latent_penalty_term(z)
        for reg in steps.regularizers:
            total = total + reg(params)
        return total, data.detach()

    @torch.no_grad()
    def _validate(self, model, steps: RoundSteps, batch_size: int, dist: DistContext | None = None) -> float:
        dist = dist or self.dist
        if self.val_items.size == 0:
            return float("nan")
        model.eval()
        W, rank = dist.world_size, dist.rank
        batches = [shard(b, rank, W) for b in _batch_order(self.val_items, batch_size, (), False, 1)]
        sums = torch.zeros(2, dtype=torch.float64)
        for batch in self.dataset.loader([b for b in batches if b.size], self.num_workers):
            batch = batch.to(self.device)
            params, _ = model(batch, training=False)
            loss = steps.loss(steps.image_model.predict(params, batch), steps.image_model.observe(batch))
            sums += torch.tensor([float(loss.sum()), len(batch)], dtype=torch.float64)
        dist.all_reduce_sum(sums)
        model.train()
        return float(sums[0] / sums[1])

    # ------------------------------------------------------------ outputs
    @torch.no_grad()
    def _finish(self, state) -> None:
        """The run's latent files and ``model.pt`` (the encoder with the decoders as the schedule left them)."""
        z = self.encode_items(state)  # every process takes part (cached when a refinement needed it)
        if self.dist.is_main:
            n, K = self.dataset.n_particles, self.dataset.n_sym
            last = max(s.round for s in self.stages if s.registry_name == "train")
            model = assemble_model(self.config, state.encoder, state.decoders, last, self.neutral).to(self.device)
            model.eval()
            if state.refinement is None:
                save_npy(self.out / "latent.npy", z.reshape(n, K, -1) if K > 1 else z)
            else:
                cycles = [self._cycle_record(r) for r in state.records]
                if state.latent_changed:  # the last refinement's latent, no decoders trained on it
                    start, label = state.refined_from
                    write_refined_outputs(self.out, self.dataset, z, start, label, state.refinement, cycles[:-1] or None,
                                          progress=self.progress, say=lambda line: print(line, flush=True))
                else:
                    write_cycle_outputs(self.out, self.dataset, z, state.latent,
                                        {**state.refinement.summary(), "cycles": cycles}, state.refinement)
                write_losses(self.out / "losses.csv", self.history)
                plot_losses(self.out / "losses.png", self.history)
            save_model(self.out / "model.pt", self.config, model, self.neutral, self.config.data.gmm, last)
        self.dist.barrier()

    @staticmethod
    def _cycle_record(record: dict) -> dict:
        """A cycle's record for ``refine.json``, its keys in reading order."""
        first = ("cycle", "anchors", "components", "junk_left_out")
        last = ("mean_posterior_entropy", "variance_kept", "refine_seconds", "seconds")
        out = {k: record[k] for k in first if k in record}
        out.update({k: v for k, v in record.items() if k not in first + last})
        out.update({k: record[k] for k in last if k in record})
        out["seconds"] = round(float(out["seconds"]), 2)
        return out


def _batch_order(items, batch_size, seed_words, shuffle, min_last):
    from ..io.dataset import batch_order

    return batch_order(items, batch_size, seed_words, shuffle=shuffle, min_last=min_last)


REUSE = ("never", "if-same-config")


def same_configuration(record: dict, config: RunConfig) -> bool:
    """Whether a run folder's ``config.json`` (``record``: ``{"hash", "config", ...}``) holds ``config``.

    The same hash, or a configuration written before keys were added to the format: read with those
    keys at their defaults it is ``config`` (a run started by an earlier gmmplat resumes and is reused).
    """
    if record.get("hash") == config.hash():
        return True
    try:
        return RunConfig.from_dict(record.get("config")).hash() == config.hash()
    except (ConfigError, TypeError, ValueError, KeyError, AttributeError):
        return False


def holds_same_run(out_dir: str | os.PathLike, config: RunConfig) -> bool:
    """Whether ``out_dir`` holds a run (``config.json``) of this configuration (:func:`same_configuration`)."""
    path = Path(out_dir) / "config.json"
    try:
        return path.is_file() and same_configuration(json.loads(path.read_text()), config)
    except ValueError:
        return False


def train(config: RunConfig, out_dir: str | os.PathLike, reuse: str = "never", **kwargs) -> TrainResult:
    """``Trainer(config, out_dir, **kwargs).run()``, with a policy for a folder that already holds a run.

    ``reuse="never"``: the Trainer's rules (a folder holding a run is refused unless ``resume=True``).
    ``reuse="if-same-config"`` (notebooks): a run of the same configuration is continued from its
    checkpoint, or returned as it is when finished; a run of another configuration is deleted and
    trained afresh.
    """
    if reuse not in REUSE:
        raise ConfigError(f"reuse must be one of {', '.join(REUSE)}, got {reuse!r}")
    out = Path(out_dir)
    if reuse == "if-same-config":
        if holds_same_run(out, config):
            if (out / "model.pt").is_file():
                return TrainResult(os.fspath(out), read_losses(out / "losses.csv").to_dict(orient="records"))
            kwargs["resume"] = True
        elif (out / "config.json").is_file():
            shutil.rmtree(out)
    return Trainer(config, out, **kwargs).run()
