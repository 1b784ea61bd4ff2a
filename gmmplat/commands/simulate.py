"""``gmmplat simulate``: write the synthetic datasets (hinge, bend, coupled) with ground truth."""
from __future__ import annotations

import argparse
from pathlib import Path

from ._common import SHARED_OPTIONS, positive_float, positive_int


DATASET_CHOICES = ("hinge", "bend", "coupled", "all")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASET_CHOICES, help="which dataset; 'all' writes the three")
    parser.add_argument("--out", required=True, type=Path, help="output folder; each dataset goes to OUT/<name>/")
    parser.add_argument("--n-particles", type=positive_int, default=3000, help="particles per dataset (default 3000)")
    parser.add_argument("--box", type=positive_int, default=64, help="image and map edge in pixels, even (default 64)")
    parser.add_argument("--pixel-size", type=positive_float, default=2.0, help="pixel size in Å (default 2.0)")
    parser.add_argument("--snr", type=positive_float, default=0.05,
                        help="signal-to-noise ratio, mean signal variance / noise variance; 'inf' for none "
                             "(default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same files (default 0)")
    parser.add_argument("--sigma", type=positive_float, default=3.0, help="width of each atom's Gaussian in Å (default 3.0)")
    parser.add_argument("--invert-contrast", action="store_true", help="write dark-protein images (multiply by -1)")
    parser.add_argument("--images-per-stack", type=positive_int, default=1000, help="images per .mrcs stack (default 1000)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset folder OUT/<name> (refused otherwise)")
    parser.add_argument("--no-progress", "--quiet", dest="quiet", action="store_true",
                        help=SHARED_OPTIONS["--no-progress"]["help"])


def run(args: argparse.Namespace) -> int:
    from gmmplat.simulate import simulate_dataset
    from gmmplat.synthetic.motions import DATASETS

    from ..errors import InputError
    from ..io.atomic import check_output_path, staged_folder

    names = DATASETS if args.dataset == "all" else (args.dataset,)
    check_output_path(args.out, "--out")
    for name in names:  # refuse before simulating anything
        out = args.out / name
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.overwrite:
            raise InputError(out, "dataset folder exists; pass --overwrite to replace it, or choose another --out")
    for name in names:
        out = args.out / name
        with staged_folder(out, overwrite=args.overwrite) as tmp:
            meta = simulate_dataset(
                name, tmp, n_particles=args.n_particles, box=args.box, pixel_size_angstrom=args.pixel_size,
                snr=args.snr, seed=args.seed, sigma_angstrom=args.sigma, invert_contrast=args.invert_contrast,
                images_per_stack=args.images_per_stack, progress=not args.quiet,
            )
        s = meta["summary"]
        print(
            f"{name}: {args.n_particles} particles in {meta['n_stacks']} stack(s), {s['n_atoms']} atoms, "
            f"{s['n_residues']} residues, max displacement {s['max_displacement_at_t1_angstrom']:.1f} Å at |t|=1, "
            f"{meta['elapsed_seconds']:.1f} s -> {out}"
        )
    return 0
