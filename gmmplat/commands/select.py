"""``gmmplat select``: write the particles behind a latent-space selection, for re-refinement.

Examples::

    gmmplat select --run runs/a --state 2 --out state2.star          # k-means labels of analyze --states
    gmmplat select --run runs/a --pc 1 --range -1.5,-0.5 --out low_pc1.star
    gmmplat select --run runs/a --ellipse 0.8,0.2,0.5,0.3,30 --out blob.cs
    gmmplat select --run runs/a --indices sel.npy --out chosen.star
    gmmplat select --run runs/a --exclude-junk --out clean.star          # fit quality: junk left out
    gmmplat select --run runs/a --state 2 --quality-above 40 --out state2_good.star

The run's particle file (STAR or cryoSPARC .cs, with the reader options it was trained
with; or the one given with --star/--cs) is written back in its own format: a STAR subset
keeps every column, the optics block and the order; a .cs subset keeps uid and all fields.
Symmetry-expanded runs combine a particle's copies by --rule (default majority).
``--quality-above Q`` and ``--exclude-junk`` (RUN/quality.npy and RUN/fit_scale.npy of the latent
refinement; gmmplat.analysis.quality) keep only the particles that fit well, alone or after a rule.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ._common import add_shared_options, existing_file, finite_float, other_particles_check, positive_int, refuse_existing
from .particle_args import add_particle_arguments, open_particles, particle_file_given



def add_arguments(p: argparse.ArgumentParser) -> None:
    add_shared_options(p, "--run")
    p.add_argument("--out", required=True, help="subset file to write: .star or .cs (its folder must exist)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--state", type=_states, metavar="K[,K...]",
                     help="k-means state(s), 0-based, from kmeans.npz of gmmplat analyze --states")
    how.add_argument("--pc", type=positive_int, metavar="P", help="principal component (1-based); goes with --range")
    how.add_argument("--ellipse", type=_floats, metavar="CX,CY,RX,RY[,DEG]",
                     help="ellipse on the PC1/PC2 plane: centre, semi-axes, rotation (degrees)")
    how.add_argument("--indices", metavar="SEL.npy",
                     help="particle rows (0-based integers) or a boolean mask over particles")
    p.add_argument("--range", type=_floats, metavar="LO,HI", help="with --pc: score range (inclusive)")
    p.add_argument("--quality-above", type=finite_float, metavar="Q",
                   help="keep the particles whose fit quality (RUN/quality.npy: log-likelihood gain over the noise "
                        "model, nats) is above Q; alone or after a rule above")
    p.add_argument("--exclude-junk", action="store_true",
                   help="leave out the particles fitted at under half the median scale (RUN/fit_scale.npy: empty "
                        "ice, fragments); the threshold is printed")
    p.add_argument("--rule", choices=["any", "majority", "all"], default="majority",
                   help="symmetry-expanded runs: select a particle when any / a majority / all of its copies "
                        "fall in the selection (default majority)")
    p.add_argument("--analysis", help="folder of gmmplat analyze's outputs (default RUN/analysis)")
    p.add_argument("--latent", help="latent .npy to select from instead of RUN/latent.npy")
    add_particle_arguments(p, required=False)
    add_shared_options(p, "--allow-other-particles", "--overwrite")


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not np.all(np.isfinite(values)):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values


def _states(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if min(values) < 0:
        raise argparse.ArgumentTypeError(f"states are counted from 0, got {text}")
    return values


def _check_out(out: str) -> None:
    """Refuse an --out that is not a .star/.cs file path this process can write (before any work)."""
    from ..io.atomic import check_output_path

    if Path(out).suffix.lower() not in (".star", ".cs"):
        raise InputError(out, "--out must end in .star or .cs (the format written)")
    check_output_path(out, "--out", folder=False, create_parents=False)


def _check_options(args: argparse.Namespace) -> None:
    if not any(v is not None for v in (args.state, args.pc, args.ellipse, args.indices)) and \
            args.quality_above is None and not args.exclude_junk:
        raise ConfigError("give a selection: --state, --pc with --range, --ellipse, --indices, --quality-above or "
                          "--exclude-junk")
    if (args.pc is None) != (args.range is None):
        raise ConfigError("--pc and --range go together")
    if args.range is not None:
        if len(args.range) != 2:
            raise ConfigError("--range takes two numbers: LO,HI")
        if not args.range[0] < args.range[1]:
            raise ConfigError(f"--range {args.range[0]:g},{args.range[1]:g}: LO must be below HI")
    if args.ellipse is not None:
        if len(args.ellipse) not in (4, 5):
            raise ConfigError("--ellipse takes CX,CY,RX,RY or CX,CY,RX,RY,DEG")
        if min(args.ellipse[2:4]) <= 0:
            raise ConfigError(f"--ellipse semi-axes RX,RY must be > 0, got {args.ellipse[2]:g},{args.ellipse[3]:g}")
    if args.indices is not None:
        existing_file(args.indices, "--indices", "selection file (.npy)")


def run(args: argparse.Namespace) -> int:
    from ..analysis.latent import fit_pca, flatten_latent
    from ..analysis.runs import load_analysis_run, run_particles
    from ..analysis.select import (Selection, ellipse_rows, particles_from_rows, pc_range_rows, state_rows,
                                   write_subset)

    _check_options(args)
    given = particle_file_given(args)
    _check_out(args.out)
    ar = load_analysis_run(args.run, args.latent, check_star=not given)
    particles = open_particles(args, require_poses=False, require_ctf=False) if given else \
        run_particles(ar, require_poses=False, require_ctf=False)
    if len(particles.table) != ar.latent.shape[0]:
        raise InputError(particles.path, f"has {len(particles.table)} particles but the latent "
                                         f"{ar.latent_path} has {ar.latent.shape[0]} rows")
    _not_an_input(args.out, particles.path, args.passthrough)
    refuse_existing([args.out], args.overwrite)
    other_particles_check(args.run, particles.table, particles.path, args.allow_other_particles)
    n_rows = flatten_latent(ar.latent).shape[0]
    if args.state is not None:
        folder = Path(args.analysis) if args.analysis else Path(args.run) / "analysis"
        labels = _read_labels(folder / "kmeans.npz", n_rows)
        mask, what = state_rows(labels, args.state), f"state {','.join(map(str, args.state))}"
    elif args.pc is not None or args.ellipse is not None:
        scores = fit_pca(ar.latent).scores
        need = args.pc if args.pc is not None else 2
        if scores.shape[1] < need:
            raise ConfigError(f"{'--pc ' + str(args.pc) if args.pc is not None else '--ellipse'}: the latent has "
                              f"{scores.shape[1]} principal component(s)")
        if args.pc is not None:
            mask = pc_range_rows(scores, args.pc, *args.range)
            what = f"PC{args.pc} in [{args.range[0]:g}, {args.range[1]:g}]"
        else:
            mask, what = ellipse_rows(scores, *args.ellipse), "ellipse " + ",".join(f"{v:g}" for v in args.ellipse)
    elif args.indices is not None:
        sel_rows = _read_indices(args.indices, len(particles.table))
        sel = Selection(sel_rows, len(particles.table), 1, "indices")
        mask = None
        what = f"indices of {args.indices}"
    else:
        sel, mask, what = Selection(np.arange(len(particles.table)), len(particles.table), 1, "all"), None, "all"
    if mask is not None:
        sel = particles_from_rows(mask, ar.latent.shape, args.rule)
    sel, what = _quality_filter(args, sel, what)
    if sel.particles.size == 0:
        raise ConfigError(f"{what}: no particle selected; nothing written")
    kind = write_subset(particles, sel.particles, args.out)
    print(f"select: {what}: {sel.describe()}; written to {args.out} ({kind})")
    return 0


def _quality_filter(args: argparse.Namespace, sel, what: str):
    """Keep the selected particles that pass ``--quality-above`` / ``--exclude-junk`` (one line each says how many)."""
    from ..analysis.quality import DEFAULT_JUNK_SCALE, junk_mask, load_fit_scale, load_quality
    from ..analysis.select import Selection

    keep = np.ones(sel.n_particles, dtype=bool)
    if args.quality_above is not None:
        q = load_quality(args.run, sel.n_particles)
        keep &= q > args.quality_above
        what += f", quality above {args.quality_above:g}"
        print(f"select: {int((q > args.quality_above).sum())} of {sel.n_particles} particles have a quality above "
              f"{args.quality_above:g} (median {np.median(q):.4g})")
    if args.exclude_junk:
        junk, threshold = junk_mask(load_fit_scale(args.run, sel.n_particles), DEFAULT_JUNK_SCALE)
        keep &= ~junk
        what += ", junk left out"
        print(f"select: {int(junk.sum())} of {sel.n_particles} particles ({junk.mean():.1%}) fit at under "
              f"{DEFAULT_JUNK_SCALE:g} × the median scale (fitted scale below {threshold:.4g}): left out as junk")
    if keep.all():
        return sel, what
    return Selection(sel.particles[keep[sel.particles]], sel.n_particles, sel.n_copies, sel.rule), what


def _not_an_input(out: str, *inputs) -> None:
    """Refuse to write the subset over the particle file (or passthrough) it is taken from."""
    out_path = Path(out).absolute().resolve()
    for path in inputs:
        if path is not None and Path(path).absolute().resolve() == out_path:
            raise InputError(out, "--out is the particle file the subset is taken from; choose another name")


def _read_labels(path: Path, n_rows: int) -> np.ndarray:
    """The k-means labels ``(n_rows,)`` of ``kmeans.npz``; one-line InputError when unusable."""
    if not path.is_file():
        raise InputError(path, "k-means labels not found; run gmmplat analyze --states K first")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "labels" not in z.files:
                raise InputError(path, "holds no labels array; rerun gmmplat analyze --states K")
            labels = np.asarray(z["labels"]).reshape(-1)
    except (ValueError, OSError, EOFError, AttributeError, TypeError):  # text, a .npy, pickles, truncated
        raise InputError(path, "not a k-means file (.npz written by gmmplat analyze --states)") from None
    if labels.dtype.kind not in "iu":
        raise InputError(path, f"labels must be integers, got {labels.dtype}")
    if labels.size != n_rows:
        raise InputError(path, f"has {labels.size} labels but the latent has {n_rows} rows")
    return labels


def _read_indices(path: str, n: int) -> np.ndarray:
    try:
        sel = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(path, f"not a readable .npy file ({type(exc).__name__})") from None
    if not isinstance(sel, np.ndarray):
        raise InputError(path, "not a .npy array (an .npz archive?); save the rows with numpy.save")
    sel = np.asarray(sel).reshape(-1)
    if sel.dtype == bool:
        if sel.size != n:
            raise InputError(path, f"boolean mask has {sel.size} entries but there are {n} particles")
        return np.flatnonzero(sel)
    if not np.issubdtype(sel.dtype, np.integer):
        raise InputError(path, f"expected particle rows (integers) or a boolean mask, got {sel.dtype}")
    if sel.size and (sel.min() < 0 or sel.max() >= n):
        raise InputError(path, f"particle rows must lie in 0..{n - 1} (found {sel.min()}..{sel.max()})")
    return np.unique(sel).astype(np.int64)
