"""``gmmplat refine``: (re-)refine a trained run's latent points with other settings, without training.

Examples::

    gmmplat refine --run runs/hinge                              # the presets' settings: 24 anchors, 10 Å
    gmmplat refine --run runs/hinge --anchors 48 --high-res 8    # more anchors, a wider band
    gmmplat refine --run runs/old --device cuda                  # a run trained without refinement

Reads the encoder's points (``RUN/latent_encoder.npy``, or ``RUN/latent.npy`` of a run trained
without refinement) and the run's particles, and writes ``latent.npy``, ``latent_encoder.npy`` and
``refine.json`` in the run folder (each file atomically; docs/training.md, "Latent refinement").
A run trained with refinement cycles starts from the last cycle's points (``RUN/latent_cycle.npy``),
which its decoders were trained on; the anchors are stretched as the run's configuration says.
Poses corrected by the run's cycles (``RUN/pose_correction.npy``) are applied, as in training, and
``quality.npy`` / ``fit_scale.npy`` / ``fit_bfactor.npy`` are written anew.  ``--star``/``--cs`` refine on
another particle file of the same images instead (with ``--allow-other-particles`` when it is not the run's own, e.g.
poses refined again elsewhere); the run's pose corrections belong to its own file's poses and are
applied only to that file.
"""
from __future__ import annotations

import argparse
import os

from ._common import add_shared_options, int_at_least, other_particles_check, positive_float, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..refine.latent import DEFAULT_ANCHORS, DEFAULT_HIGH_RES_ANGSTROM, DEFAULT_POSE_ANCHORS

    add_shared_options(p, "--run")
    p.add_argument("--anchors", type=int_at_least(2), default=DEFAULT_ANCHORS,
                   help="k-means anchors of the encoder's latent points (at least 2; default %(default)s)")
    p.add_argument("--high-res", type=positive_float, default=DEFAULT_HIGH_RES_ANGSTROM,
                   help="band limit in Å (Nyquist when finer; default %(default)s)")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="likelihood temperature (1: exact; default %(default)s)")
    p.add_argument("--pose-samples", type=positive_int, default=1,
                   help="average each anchor's likelihood over this many poses about the particle's "
                        "(1: its pose only; default %(default)s)")
    p.add_argument("--pose-spread-deg", type=float, default=0.0,
                   help="spread of the sampled rotations per axis in degrees (with --pose-samples)")
    p.add_argument("--pose-spread-angstrom", type=float, default=0.0,
                   help="spread of the sampled origin offsets per axis in Å (with --pose-samples)")
    p.add_argument("--pose-anchors", type=positive_int, default=DEFAULT_POSE_ANCHORS,
                   help="the pose samples are projected at each particle's this many most probable anchors "
                        "(default %(default)s)")
    add_shared_options(p, "--device")
    p.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's choice)")
    add_shared_options(p, "--no-progress")
    from .particle_args import add_particle_arguments

    add_particle_arguments(p, required=False)  # default: the run's own particle file
    add_shared_options(p, "--allow-other-particles")


def coarsest_band_limit(box: int, pixel_size_angstrom: float) -> float:
    """The coarsest band limit (Å) that keeps one frequency besides the mean: the box edge (1/|k| of the
    first Fourier pixel)."""
    return float(box) * float(pixel_size_angstrom)


def encoder_latent_path(run_dir) -> str:
    """``RUN/latent_encoder.npy`` when present, else ``RUN/latent.npy`` (a run trained without refinement)."""
    enc = os.path.join(run_dir, "latent_encoder.npy")
    return enc if os.path.isfile(enc) else os.path.join(run_dir, "latent.npy")


def previous_cycles(run_dir) -> list | None:
    """The ``cycles`` records of ``RUN/refine.json`` (kept when the run is refined again), or None."""
    import json

    try:
        with open(os.path.join(run_dir, "refine.json")) as fh:
            return json.load(fh).get("cycles")
    except (OSError, ValueError, AttributeError):
        return None


def _apply_pose_corrections(run_dir: str, dataset) -> None:
    """The poses the run's decoders last trained at (``pose_correction.npy`` of its cycles), if any."""
    import numpy as np

    from ..errors import InputError
    from ..refine.poses import PoseCorrections

    path = os.path.join(run_dir, "pose_correction.npy")
    if not os.path.isfile(path):
        return
    try:
        c = np.load(path, allow_pickle=False).astype(np.float64)
    except (ValueError, OSError, EOFError):
        raise InputError(path, "not a pose-correction file (.npy of n × 5 numbers)") from None
    if c.ndim != 2 or c.shape != (len(dataset), 5):
        raise InputError(path, f"holds {c.shape} values but the run's particles give {len(dataset)} items × 5")
    dataset.set_pose_corrections(PoseCorrections(np.radians(c[:, :3]), c[:, 3:].copy()))
    print(f"refine: the poses corrected by the run's cycles ({os.path.basename(path)})")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..analysis.latent import flatten_latent
    from ..analysis.runs import load_analysis_run
    from ..errors import ConfigError, InputError
    from ..io.dataset import ParticleDataset
    from ..records import read_latent
    from ..train.refine_run import refine_run_latent
    from .particle_args import particle_file_given, particle_source
    from .train import check_device

    if args.anchors < 2:
        raise ConfigError(f"--anchors: at least 2, got {args.anchors}")
    check_device(args.device)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked but no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    latent_path = encoder_latent_path(args.run)
    ar = load_analysis_run(args.run, latent_path)
    if not os.access(args.run, os.W_OK):
        raise InputError(args.run, "no permission to write in the run folder")
    data = ar.run.config.data
    own = data.source()
    source = particle_source(args) if particle_file_given(args) else own
    # the run's pose corrections correct its own file's poses: another file's are used as they stand
    own_file = os.path.realpath(source.path) == os.path.realpath(own.path)
    dataset = ParticleDataset(source, invert_contrast=data.invert_contrast, symmetry=data.symmetry)
    other_particles_check(args.run, dataset.table, dataset.star_path, args.allow_other_particles)
    coarsest = coarsest_band_limit(dataset.box, dataset.pixel_size_angstrom)
    if args.high_res > coarsest:
        raise ConfigError(f"--high-res {args.high_res:g} Å leaves no frequency in the band of these "
                          f"{dataset.box} px images at {dataset.pixel_size_angstrom:g} Å/px; the coarsest usable "
                          f"value is {coarsest:g} Å")
    z = flatten_latent(ar.latent, path=latent_path)
    if len(z) != len(dataset):
        raise InputError(latent_path, f"latent has {len(z)} rows but the run's particles give {len(dataset)} "
                                      f"({dataset.n_particles} particles × {dataset.n_sym} symmetry copies)")
    if own_file:
        _apply_pose_corrections(args.run, dataset)
    elif os.path.isfile(os.path.join(args.run, "pose_correction.npy")):
        print(f"refine: the poses of {dataset.star_path} as they stand (the run's pose_correction.npy belongs to "
              f"its own particle file)")
    model = ar.run.model.to(args.device)
    source, cycles = None, None
    cycle_path = os.path.join(args.run, "latent_cycle.npy")
    if os.path.isfile(cycle_path):
        source = flatten_latent(read_latent(cycle_path), path=cycle_path)
        if source.shape != z.shape:
            raise InputError(cycle_path, f"holds {source.shape[0]} × {source.shape[1]} latent points but the "
                                         f"encoder's are {z.shape[0]} × {z.shape[1]}")
        cycles = previous_cycles(args.run)
    _, summary = refine_run_latent(
        args.run, model.decode, dataset, np.asarray(z, np.float32), anchors=args.anchors,
        high_res_angstrom=args.high_res, temperature=args.temperature, projector=ar.run.config.projector,
        seed=ar.run.config.seed, anchor_stretch=1.0 if source is None else ar.run.config.refine.cycle_stretch,
        anchor_source=source, cycles=cycles, device=args.device, progress=not args.no_progress,
        pose_samples=args.pose_samples, pose_spread_deg=args.pose_spread_deg,
        pose_spread_angstrom=args.pose_spread_angstrom, pose_anchors=args.pose_anchors)
    print(f"refine: {dataset.n_particles} particles, {summary['n_anchors']} anchors, band to "
          f"{summary['options']['band_high_res_angstrom']:g} Å; latent.npy holds the {summary['latent_npy']} points "
          f"({summary['variance_kept']:.0%} of the latent's spread kept, mean posterior entropy "
          f"{summary['mean_posterior_entropy']:.2f}); {summary['seconds']:.1f} s")
    return 0
