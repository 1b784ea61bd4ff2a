"""``gmmplat simulate``: write the synthetic datasets (hinge, bend, coupled; the large tetramer) with ground truth."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import SHARED_OPTIONS, positive_float, positive_int


DATASET_CHOICES = ("hinge", "bend", "coupled", "all", "tetramer")
#: the options' values when not given; a molecule's ``simulation_defaults`` (the tetramer's) come first
OPTION_DEFAULTS = {"box": 64, "pixel_size_angstrom": 2.0, "sigma_angstrom": 3.0, "n_consensus": 21}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASET_CHOICES, help="which dataset; 'all' writes the three small ones; 'tetramer' is the large C4 "
                                                              "assembly (box 256 at 1 Å/px; docs/sample_data.md)")
    parser.add_argument("--out", required=True, type=Path, help="output folder; each dataset goes to OUT/<name>/")
    parser.add_argument("--n-particles", type=positive_int, default=3000, help="particles per dataset (default 3000)")
    parser.add_argument("--box", type=positive_int, help="image and map edge in pixels, even (default 64; tetramer 256)")
    parser.add_argument("--pixel-size", type=positive_float, help="pixel size in Å (default 2.0; tetramer 1.0)")
    parser.add_argument("--snr", type=positive_float, default=0.05,
                        help="signal-to-noise ratio, mean signal variance / noise variance; 'inf' for none "
                             "(default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    parser.add_argument("--sigma", type=positive_float,
                        help="width of each atom's Gaussian in Å (default 3.0; tetramer 1.5)")
    parser.add_argument("--invert-contrast", action="store_true", help="write dark-protein images (multiply by -1)")
    parser.add_argument("--images-per-stack", type=positive_int, default=1000, help="images per .mrcs stack (default 1000)")
    g = parser.add_argument_group("nuisances of real data (docs/sample_data.md); each recorded in truth.csv")
    g.add_argument("--realistic", action="store_true",
                   help="every nuisance at a size common in real data (12%% junk: empty ice and fragments, B 40-120 Å², noise power at "
                        "Nyquist 0.25, scale σ 0.15, pose error σ 3°, shift error σ 1 Å; the options below "
                        "override one); writes OUT/<name>_realistic/")
    g.add_argument("--junk-fraction", type=float, help="fraction of junk particles (empty ice, fragments, "
                                                         "other objects in equal shares)")
    g.add_argument("--junk-kinds", help="comma-separated kinds of junk: empty, fragment, other (default all)")
    g.add_argument("--bfactor-range", metavar="LO,HI", help="per-particle B-factor drawn uniformly in LO..HI Å²")
    g.add_argument("--noise-power-at-nyquist", type=float,
                   help="coloured noise: power at Nyquist relative to the origin (1: white)")
    g.add_argument("--scale-sigma", type=float, help="per-particle lognormal intensity scale, σ of its log")
    g.add_argument("--pose-error-deg", type=float, help="σ per axis of the rotation error written to the STAR")
    g.add_argument("--shift-error-angstrom", type=float, help="σ per axis of the origin error written to the STAR")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset folder OUT/<name> (refused otherwise)")
    parser.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true",
                        help=SHARED_OPTIONS["--no-progress"]["help"])


def nuisances_from_args(args: argparse.Namespace):
    """The :class:`~gmmplat.synthetic.nuisance.Nuisances` the options ask for (``--realistic`` as the base)."""
    from ..errors import ConfigError
    from ..synthetic.nuisance import REALISTIC, Nuisances

    values = REALISTIC.to_dict() if args.realistic else Nuisances().to_dict()
    for key in ("junk_fraction", "noise_power_at_nyquist", "scale_sigma", "pose_error_deg", "shift_error_angstrom"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.junk_kinds is not None:
        values["junk_kinds"] = [k.strip() for k in args.junk_kinds.split(",") if k.strip()]
    if args.bfactor_range is not None:
        try:
            lo, hi = (float(v) for v in args.bfactor_range.split(","))
        except ValueError:
            raise ConfigError(f"--bfactor-range takes LO,HI in Å², got {args.bfactor_range!r}") from None
        values["bfactor_range_angstrom2"] = [lo, hi]
    try:
        return Nuisances.from_dict(values)
    except ConfigError as exc:
        raise ConfigError(f"simulate: {exc}") from None


def dataset_options(name: str, args: argparse.Namespace) -> dict:
    """Box, pixel size, atom σ and consensus conformations for dataset ``name``: the options given, else the
    molecule's own defaults, else :data:`OPTION_DEFAULTS`."""
    from gmmplat.synthetic.motions import get_motion

    values = {**OPTION_DEFAULTS, **get_motion(name).simulation_defaults}
    given = {"box": args.box, "pixel_size_angstrom": args.pixel_size, "sigma_angstrom": args.sigma}
    values.update({k: v for k, v in given.items() if v is not None})
    return values


def run(args: argparse.Namespace) -> int:
    from gmmplat.synthetic.motions import DATASETS
    from gmmplat.synthetic.simulate import simulate_dataset

    from ..errors import InputError
    from ..io.atomic import check_output_path, staged_folder

    names = DATASETS if args.dataset == "all" else (args.dataset,)
    nuisances = nuisances_from_args(args)
    suffix = "_realistic" if args.realistic else ""
    check_output_path(args.out, "--out")
    for name in names:  # refuse before simulating anything
        out = args.out / (name + suffix)
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
            raise InputError(out, "dataset folder exists; pass --overwrite to replace it, or choose another --out")
    for name in names:
        out = args.out / (name + suffix)
        options = dataset_options(name, args)
        with staged_folder(out, overwrite=args.overwrite) as tmp:
            meta = simulate_dataset(
                name, tmp, n_particles=args.n_particles, snr=args.snr, seed=args.seed,
                invert_contrast=args.invert_contrast, images_per_stack=args.images_per_stack,
                progress=not args.quiet, nuisances=nuisances, **options,
            )
        s = meta["summary"]
        print(
            f"{name}: {args.n_particles} particles in {meta['n_stacks']} stack(s), {s['n_atoms']} atoms, "
            f"{s['n_residues']} residues, max displacement {s['max_displacement_at_t1_angstrom']:.1f} Å at |t|=1, "
            f"{meta['elapsed_seconds']:.1f} s -> {out}"
        )
    return 0
