"""``gmmplat evaluate``: score a run's latent space against the ground truth of simulated data.

Examples::

    gmmplat evaluate --run runs/hinge --truth sample_data/hinge/truth.csv
    gmmplat evaluate --run runs/hinge --truth sample_data/hinge/truth.csv \\
        --truth-frames sample_data/hinge/truth_frames.pdb --model sample_data/hinge/neutral_model.pdb
    gmmplat evaluate --oracle sample_data/hinge --run runs/hinge_a --run runs/hinge_b

Writes ``scores.json`` (default ``RUN/scores.json``): ``spearman_abs`` (best of the
first three PCs), ``knn_r2``, ``neighbour_overlap`` (and its random baseline) and,
with atomic frames, ``frame_rmsd`` per frame (morphed vs neutral model, Cα, Å).
With ``--oracle DATASET`` (a ``gmmplat simulate`` folder): the exact-likelihood oracle's
scores on a subset of the particles, and every ``--run``'s beside them as a fraction of the
way from the trivial answer to the oracle; each run's ``scores.json``, ``per_residue_rmsd.csv``
and ``.png`` are written in its folder (gmmplat.analysis.oracle_report).  See docs/analysis.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_shared_options, nonnegative_int, other_particles_check, positive_int, refuse_existing



def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", action="append", default=[],
                   help="a training run's folder; repeatable with --oracle")
    p.add_argument("--truth", help="truth.csv (particle_index, t[, frame]); not with --oracle")
    p.add_argument("--oracle", metavar="DATASET", help="simulated dataset folder: score the exact-likelihood "
                                                       "oracle and put the runs beside it")
    p.add_argument("--oracle-pose-samples", type=nonnegative_int, default=0,
                   help="datasets simulated with pose errors: also the oracle told only the stated poses, a Monte "
                        "Carlo average over this many pose samples per particle on 300 particles (slow: 32 "
                        "samples take minutes; default 0: off)")
    p.add_argument("--oracle-particles", type=nonnegative_int, default=1000,
                   help="particles the oracle scores (seeded random subset; 0: all; default 1000)")
    add_shared_options(p, "--truth-frames")
    p.add_argument("--model", help="neutral atomic model, the template of the truth frames (with --truth-frames)")
    p.add_argument("--out", help="scores JSON (default RUN/scores.json)")
    p.add_argument("--latent", help="latent .npy to score instead of RUN/latent.npy")
    p.add_argument("--k", type=positive_int, default=10, help="neighbours for kNN R² and overlap (default 10)")
    add_shared_options(p, "--s-angstrom")
    add_shared_options(p, "--morph-reference")
    p.add_argument("--seed", type=int, default=0, help="seed of the cross-validation folds (default 0)")
    add_shared_options(p, "--overwrite")
    add_shared_options(p, "--allow-other-particles")


def run(args: argparse.Namespace) -> int:
    from ..analysis.runs import load_analysis_run, score_run
    from ..errors import ConfigError
    from ..io.atomic import check_output_path, write_json

    if args.oracle:
        return _oracle(args)
    if len(args.run) != 1 or not args.truth:
        raise ConfigError("give one --run and --truth (or --oracle DATASET with any number of --run)")
    args.run = args.run[0]
    if bool(args.truth_frames) != bool(args.model):
        raise ConfigError("--truth-frames and --model go together")
    if args.out:
        check_output_path(args.out, "--out", folder=False, create_parents=False)
    out = Path(args.out) if args.out else Path(args.run) / "scores.json"
    if args.allow_other_particles:
        raise ConfigError("--allow-other-particles goes with --oracle (with --truth no particle file is read)")
    ar = load_analysis_run(args.run, args.latent)
    refuse_existing([out], args.overwrite)
    scores = score_run(ar, args.truth, args.truth_frames or None, args.model or None, k=args.k, seed=args.seed,
                       s_angstrom=args.s_angstrom, morph_reference=args.morph_reference)
    write_json(out, scores)
    line = (f"evaluate: |Spearman| {scores['spearman_abs']:.3f} (PC {scores['spearman_pc']}), "
            f"kNN R² {scores['knn_r2']:.3f}, neighbour overlap {scores['neighbour_overlap']:.3f} "
            f"(random {scores['neighbour_overlap_random']:.3f})")
    if "mean_frame_rmsd_angstrom" in scores:
        line += (f", Cα RMSD to true frames {scores['mean_frame_rmsd_angstrom']:.2f} Å "
                 f"(neutral {scores['mean_neutral_rmsd_angstrom']:.2f} Å)")
    if "amplitude_ratio" in scores:
        line += f", amplitude ratio {scores['amplitude_ratio']:.2f}"
    print(line + f"; wrote {out}")
    return 0


def _oracle(args: argparse.Namespace) -> int:
    from ..analysis.oracle_report import format_report, score_runs_against_oracle
    from ..errors import ConfigError

    if args.truth or args.truth_frames or args.model or args.latent or args.out:
        raise ConfigError("--oracle reads the truth from the dataset folder and writes into each run folder; "
                          "drop --truth, --truth-frames, --model, --latent and --out")
    _check_oracle_runs(args)
    oracle, results = score_runs_against_oracle(args.oracle, args.run, args.oracle_particles or None,
                                                seed=args.seed, k=args.k, s_angstrom=args.s_angstrom,
                                                morph_reference=args.morph_reference, progress=True,
                                                pose_samples=args.oracle_pose_samples)
    print(format_report(oracle, results))
    return 0


def _check_oracle_runs(args: argparse.Namespace) -> None:
    """Before the oracle's work: each run was trained on the dataset's particles (or
    --allow-other-particles), and its scores file is new (or --overwrite)."""
    from ..analysis.oracle import dataset_star
    from ..errors import InputError

    from ..errors import ConfigError

    star = dataset_star(args.oracle)
    if not args.run:
        raise ConfigError("--oracle needs at least one --run")
    for run_dir in args.run:
        if not Path(run_dir).is_dir():
            raise InputError(run_dir, "run folder not found")
        other_particles_check(run_dir, star.table, star.path, args.allow_other_particles)
        refuse_existing([Path(run_dir) / "scores.json"], args.overwrite, "--oracle: the run's scores file")
