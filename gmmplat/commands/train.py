"""``gmmplat train``: heterogeneity analysis of particles against a neutral GMM.

Examples::

    gmmplat train --star particles.star --gmm gmm.npz --config run.json --out runs/a
    gmmplat train --star particles.star --gmm gmm.npz --preset rigid --domain hinge --out runs/b
    gmmplat train --cs J42_particles.cs --passthrough J42_passthrough_particles.cs --datadir /data/P7 \
        --gmm gmm.npz --preset rigid --domain hinge --out runs/c
    gmmplat train ... --out runs/a --resume          # continue an interrupted run
    torchrun --nproc_per_node=2 -- "$(which gmmplat)" train ...   # data-parallel (gloo on CPU, nccl on GPU)

Before the first epoch of a new run, 200 particles are checked against the neutral GMM
(``gmmplat check``, docs/check.md); when they clearly fit a convention mistake (origin sign,
x/y, rotation, polarity, phase-flipped stack) the run stops with one line naming the fix
(exit 2).  ``--skip-data-check`` trains anyway.

(The ``--`` keeps torchrun from reading ``--star`` as an abbreviation of its ``--start-method``.)
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

from ..errors import ConfigError
from ..train.presets import PRESETS
from ._common import add_shared_options, existing_file, nonnegative_float, nonnegative_int, positive_int
from .particle_args import add_particle_arguments, particle_source, print_notes



def add_arguments(p: argparse.ArgumentParser) -> None:
    add_particle_arguments(p)
    p.add_argument("--gmm", required=True, help="neutral GMM (.npz from gmmplat build)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="run configuration JSON (see docs/training.md)")
    src.add_argument("--preset", choices=list(PRESETS),
                     help="a ready-made configuration instead of --config")
    p.add_argument("--domain", help="mask name of the moving domain, or several comma-separated, each a rigid body "
                                    "(presets rigid and multi; free: its subset)")
    p.add_argument("--epochs", type=_epochs, help="with --preset: epochs of every round (N) or of each round (N,M)")
    p.add_argument("--batch-size", type=positive_int, help="with --preset: batch size of every round")
    p.add_argument("--latent-dim", type=positive_int, help="with --preset: latent dimension")
    p.add_argument("--refine-anchors", type=nonnegative_int,
                   help="latent refinement after training with N anchors (0: none; presets 24; docs/training.md)")
    p.add_argument("--refine-cycles", type=nonnegative_int,
                   help="refinement cycles: refine the latent and train the decoders again on it, N times (needs "
                        "refinement anchors; preset hierarchical 3, others 0; docs/training.md, 'Refinement cycles')")
    p.add_argument("--truth-latent", metavar="TRUTH.csv",
                   help="diagnostic for simulated data: the latent is the true t of truth.csv (encoder 'truth', no "
                        "refinement), so the run measures the decoders alone (docs/benchmarks.md, 'Decoder limit')")
    p.add_argument("--fixed-latent", metavar="LATENT.npy",
                   help="decoders train on these latent points ((n, d) .npy, row = particle; encoder 'fixed', "
                        "latent dimension d, no refinement), e.g. another run's latent.npy")
    p.add_argument("--out", help="run folder (created; required unless --print-config)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (refused otherwise); the old run is removed only once "
                        "the new one has finished")
    add_shared_options(p, "--invert-contrast")
    p.add_argument("--symmetry", default="C1", help="symmetry-expand the particles (e.g. C4, D2); default C1")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the config's, else 0)")
    add_shared_options(p, "--device")
    p.add_argument("--workers", type=nonnegative_int, default=0, help="image read-ahead processes (default 0)")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads per process (default: torch's choice)")
    p.add_argument("--cache-mb", type=nonnegative_float, default=256.0, help="in-memory image cache, MB (default 256)")
    p.add_argument("--check-images", action="store_true", help="scan every image for NaN/constant before training")
    p.add_argument("--checkpoint-every", type=nonnegative_int, default=0, metavar="BATCHES",
                   help="also checkpoint inside a training round's epoch every this many batches, so a stopped "
                        "run of many particles resumes there (default 0: after each epoch)")
    p.add_argument("--skip-data-check", action="store_true",
                   help="train even if the particles fit a convention mistake better (see gmmplat check)")
    p.add_argument("--print-config", action="store_true", help="print the configuration JSON and exit")
    p.add_argument("--estimate", action="store_true",
                   help="print the predicted wall time and peak memory of this run (its data, configuration, "
                        "--device and --threads; docs/performance.md) and exit; writes nothing")
    p.add_argument("--estimate-sample", type=nonnegative_int, default=512, metavar="N",
                   help="with --estimate: also train the run's schedule briefly (one epoch per stage, one cycle) on "
                        "its first N/4, N/2 and N particles and scale the measured times to all (0: the cost model "
                        "only; default %(default)s)")
    add_shared_options(p, "--no-progress")


def _epochs(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N,M,... (integers), got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("epoch counts must be >= 1")
    return values


def _check_given_latent_rows(args, n_particles: int) -> None:
    """One-line InputError when the ``--truth-latent`` table or the ``--fixed-latent`` array does not hold
    one row per particle."""
    import numpy as np

    from ..analysis.evaluate import load_truth
    from ..errors import InputError

    if args.truth_latent:
        path, n, what = args.truth_latent, len(load_truth(args.truth_latent)), "particles"
    elif args.fixed_latent:
        path, n, what = args.fixed_latent, int(np.load(args.fixed_latent, mmap_mode="r", allow_pickle=False).shape[0]), "latent points"
    else:
        return
    if n != n_particles:
        raise InputError(path, f"holds {n} {what} but the particle file has {n_particles}: "
                               f"not {'the truth' if args.truth_latent else 'a latent'} of these particles")


def check_device(text: str) -> None:
    """``cpu``, ``cuda`` or ``cuda:N``; anything else is a one-line ConfigError."""
    import re

    if not re.fullmatch(r"cpu|cuda(:\d+)?", text.strip()):
        raise ConfigError(f"--device {text!r}: expected cpu, cuda or cuda:N")


def build_config(args: argparse.Namespace):
    """The :class:`RunConfig` the arguments describe (data section filled in)."""
    from ..model.gmm import GMM
    from ..train.config import DataConfig
    from ..train.presets import config_file, preset

    source = particle_source(args)
    if args.config:
        for opt in ("epochs", "batch_size", "latent_dim"):
            if getattr(args, opt, None) is not None:
                raise ConfigError(f"--{opt.replace('_', '-')} goes with --preset; with --config set it in the JSON")
        config = config_file(args.config, lambda: GMM.load(args.gmm), getattr(args, "domain", None))
        if args.seed is not None:
            config.seed = int(args.seed)
    else:
        neutral = GMM.load(args.gmm)
        epochs = args.epochs[0] if args.epochs is not None and len(args.epochs) == 1 else args.epochs
        config = preset(args.preset, neutral, domain=args.domain, epochs=epochs,
                        seed=0 if args.seed is None else args.seed, latent_dim=args.latent_dim,
                        batch_size=args.batch_size)
    if getattr(args, "truth_latent", None):
        from ..analysis.evaluate import load_truth
        from ..train.config import StepSpec

        path = os.path.abspath(args.truth_latent)
        load_truth(path)  # a missing or malformed file stops here, named
        config.encoder = StepSpec("truth", {"truth_csv": path})
        config.refine.anchors = config.refine.cycles = 0
    if getattr(args, "fixed_latent", None):
        from ..encoders.fixed import FixedEncoder
        from ..train.config import StepSpec

        if getattr(args, "truth_latent", None):
            raise ConfigError("--fixed-latent and --truth-latent: give one of them")
        path = os.path.abspath(args.fixed_latent)
        width = FixedEncoder.width_of(path)
        if getattr(args, "latent_dim", None) is not None and args.latent_dim != width:
            raise ConfigError(f"--latent-dim {args.latent_dim} but {path} holds {width}-D latent points")
        config.encoder = StepSpec("fixed", {"latent_npy": path})
        config.latent_dim = width
        config.refine.anchors = config.refine.cycles = 0
    if args.refine_anchors is not None:
        if args.refine_anchors == 1:
            raise ConfigError("--refine-anchors: 0 (no refinement) or at least 2, got 1")
        config.refine.anchors = int(args.refine_anchors)
        if not config.refine.anchors:
            config.refine.cycles = 0
    if getattr(args, "refine_cycles", None) is not None:
        if args.refine_cycles and not config.refine.anchors:
            raise ConfigError("--refine-cycles needs the latent refinement (--refine-anchors of at least 2)")
        config.refine.cycles = int(args.refine_cycles)
    existing_file(args.gmm, "--gmm", "GMM file")
    options = {k: v for k, v in source.to_dict().items() if k != "path"}
    config.data = DataConfig(source.path, os.path.abspath(args.gmm), args.symmetry.strip().upper(),
                             bool(args.invert_contrast), options)
    return config


def run(args: argparse.Namespace) -> int:
    import torch

    from ..train.distributed import init_distributed, shutdown
    from ..train.loop import Trainer

    from ..io.atomic import check_output_path

    check_device(args.device)
    config = build_config(args)
    if args.print_config:
        print(config.to_json())
        return 0
    if args.estimate:
        if args.threads is not None:  # the sample runs measure with the run's threads
            import torch

            torch.set_num_threads(args.threads)
        for line in estimate_lines(args, config):
            print(line)
        return 0
    if not args.out:
        raise ConfigError("--out is required (the run folder)")
    check_output_path(args.out, "--out")
    _check_resume(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked but no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    ctx = init_distributed(args.device)
    try:
        trainer = Trainer(config, args.out, resume=args.resume, device=args.device,
                          progress=not args.no_progress, num_workers=args.workers,
                          command_line=["gmmplat", *sys.argv[1:]], dist=ctx, cache_mb=args.cache_mb,
                          check_images=args.check_images, checkpoint_batches=args.checkpoint_every)
        if ctx.is_main:
            print_notes(trainer.dataset.notes)
        _check_given_latent_rows(args, trainer.dataset.n_particles)
        if not (args.resume or args.skip_data_check):
            _data_check(trainer, ctx.is_main)
        with _replacing(args.out, args.overwrite and ctx.is_main, ctx):
            result = trainer.run()
    finally:
        shutdown(ctx)
    if ctx.is_main and result.history:
        last = result.history[-1]
        print(f"done: {result.out_dir} (final train loss {last['train_loss']:.5f}, "
              f"validation {last['val_loss']:.5f}); latent.npy and model.pt written")
    return 0


def estimate_lines(args: argparse.Namespace, config) -> list[str]:
    """The cost model's prediction (:mod:`gmmplat.train.cost`) for the run the arguments describe."""
    from ..io.particles import read_particles
    from ..model.gmm import GMM
    from ..physics.geometry import symmetry_operators
    from ..train.cost import estimate_run

    source = particle_source(args)
    star = read_particles(source.path, source.passthrough, source.datadir, require_poses=False, require_ctf=False)
    neutral = GMM.load(args.gmm)
    n_sym = int(symmetry_operators(config.data.symmetry).shape[0])
    threads = args.threads or torch_threads()
    est = estimate_run(config, len(star.table), neutral.n, neutral.box, neutral.pixel_size_angstrom, n_sym=n_sym,
                       device=args.device, threads=threads, cache_mb=args.cache_mb)
    head = (f"estimate for {len(star.table)} particles x {n_sym} symmetry copies, {neutral.n} Gaussians, box "
            f"{neutral.box} at {neutral.pixel_size_angstrom:g} Å/px, {len(config.rounds)} round(s), "
            f"{config.refine.cycles} refinement cycle(s), device {args.device}, {threads} thread(s)")
    lines = [head, "from the cost model (a table measured on one machine):", *est.lines()]
    k = min(int(getattr(args, "estimate_sample", 0) or 0), len(star.table))
    if k:
        import tempfile

        from ..analysis.select import write_subset
        from ..train.calibrate import SAMPLE_SIZES, calibrated_estimate

        with tempfile.TemporaryDirectory(prefix="gmmplat-sample-") as tmp:
            samples = {}
            for share in SAMPLE_SIZES:
                m = max(8, int(round(share * k)))
                samples[m] = os.path.join(tmp, f"sample{m}.star")
                write_subset(star, range(min(m, len(star.table))), samples[m])
            datadir = source.datadir or os.path.dirname(os.path.abspath(source.path))
            measured = calibrated_estimate(config, samples, len(star.table) * n_sym, n_sym, datadir=datadir,
                                           device=args.device)
        lines += [f"measured on samples of up to {k} particles, scaled to all:", *measured.lines()]
    return lines


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


@contextlib.contextmanager
def _replacing(out: str, overwrite: bool, ctx):
    """With ``overwrite`` (main process): the run in ``out`` is set aside (a hidden sibling) while the new
    one trains, removed when it has finished, and put back if it fails; an interrupted new run is kept
    (it is resumable) and the old one removed, as asked."""
    import shutil
    import uuid
    from pathlib import Path

    final = Path(out).absolute()
    old = None
    if overwrite and final.is_dir() and any(final.iterdir()):
        old = final.parent / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.replaced"
        os.replace(final, old)
        print(f"note: {out}: the run there is replaced (--overwrite)", flush=True)
    ctx.barrier()
    try:
        yield
    except Exception:
        if old is not None:
            shutil.rmtree(final, ignore_errors=True)
            os.replace(old, final)
        raise
    except BaseException:  # Ctrl-C: the new run is resumable
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_resume(args: argparse.Namespace) -> None:
    """``--resume`` needs a checkpoint to continue from; ``--overwrite`` replaces a run, so it does not go
    with ``--resume`` (one-line ConfigError before any work)."""
    from pathlib import Path

    if args.resume and args.overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    if args.resume and not (Path(args.out) / "checkpoint.pt").is_file():
        raise ConfigError(f"--resume: {args.out} holds no checkpoint.pt, so there is no run to continue; "
                          "drop --resume to start a new run (with the data check)")


def _data_check(trainer, is_main: bool) -> None:
    """``gmmplat check`` of a few particles against the neutral GMM before the first epoch: stops
    (DataCheckFailed, exit 2) only when a convention mistake clearly fits better."""
    from ..check.api import check_before_training

    result = check_before_training(trainer.dataset, trainer.neutral, seed=trainer.config.seed)
    if is_main:
        stated = result.rows[0]
        state = "passed" if result.passed else "inconclusive, training anyway"
        print(f"data check {state}: {result.n_particles} particles, CC {stated.mean:.3f} ± {stated.se:.3f} "
              f"with the stated conventions; {result.verdict}", flush=True)
