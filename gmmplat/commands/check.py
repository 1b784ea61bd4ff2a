"""``gmmplat check``: do the particles fit their STAR conventions? (docs/check.md)

Examples::

    gmmplat check --star particles.star --map consensus.mrc
    gmmplat check --star particles.star --map consensus.mrc --model fitted.pdb --n 1000 --out check/
    gmmplat check --cs J12_particles.cs --passthrough J12_passthrough_particles.cs --map consensus.mrc

Exit code 0 when the stated conventions beat every alternative by >= 5 standard
errors, 1 otherwise (the verdict line says why), 2 for unusable input or options (one line,
nothing written).
"""
from __future__ import annotations

import argparse

from ._common import add_shared_options, existing_file, int_at_least, nonnegative_int, positive_float
from .particle_args import add_particle_arguments, particle_source, print_notes



def add_arguments(p: argparse.ArgumentParser) -> None:
    add_particle_arguments(p)
    p.add_argument("--map", required=True, help="consensus map (MRC) of these particles")
    p.add_argument("--model", help="atomic model fitted in the map: project its heavy atoms instead of the map")
    p.add_argument("--n", type=int_at_least(3), default=500, help="particles drawn at random, >= 3 (default %(default)s)")
    p.add_argument("--lowpass-angstrom", type=positive_float, default=12.0,
                   help="resolution limit of the correlation, Å (default %(default)s)")
    add_shared_options(p, "--invert-contrast")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the particle draw (default %(default)s)")
    p.add_argument("--out", default="check",
                   help="folder for check.png and check.csv, or a .png path (the .csv goes beside it; its folder "
                        "must exist); both are written together once the check is done (default %(default)s)")
    add_shared_options(p, "--no-progress")


def run(args: argparse.Namespace) -> int:
    from ..check.api import check_files, output_paths, save_outputs

    source = particle_source(args)
    existing_file(args.map, "--map", "map file (MRC)")
    if args.model is not None:
        existing_file(args.model, "--model", "model file (PDB/mmCIF)")
    output_paths(args.out, check=True)  # before the work: an unusable --out fails now, not after it
    result = check_files(source, args.map, args.model, n=args.n, lowpass_angstrom=args.lowpass_angstrom,
                         invert_contrast=args.invert_contrast, seed=args.seed, progress=not args.no_progress)
    png, csv = save_outputs(result, args.out)
    print_notes(result.notes)
    print(result.report())
    print(f"wrote {png} and {csv} ({result.seconds:.1f} s)")
    return 0 if result.passed else 1
