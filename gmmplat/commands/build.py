"""``gmmplat build``: neutral GMM from the consensus map, an atomic model, or both (docs/build.md)."""
from __future__ import annotations

import argparse

from ..neutral.pipeline import BuildOptions, build_neutral_gmm
from ._common import add_shared_options, nonnegative_float, nonnegative_int, positive_float, positive_int



def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = BuildOptions(map_path="", out_dir="")
    parser.add_argument("--map", required=True, help="consensus map (MRC); its header origin places the model")
    parser.add_argument("--model", help="atomic model (PDB/mmCIF) fitted in the map, world coordinates")
    parser.add_argument("--selection", default=d.selection, choices=["ca", "backbone", "heavy", "all"],
                        help="atoms that become Gaussians (default %(default)s)")
    parser.add_argument("--chains", help="only these chains, e.g. A,B")
    parser.add_argument("--residues", help="only these residues, e.g. A:10-50,B:1-20")
    parser.add_argument("--n-gaussians", type=positive_int, help="k-means centres for the model (default: one per atom), "
                        "or pseudoatoms for a map-only build (default: from the volume above threshold)")
    parser.add_argument("--n-pseudoatoms", type=nonnegative_int, help="pseudoatoms on unmodelled density with --combine "
                        "(default: from the remaining volume)")
    parser.add_argument("--threshold", type=float, help="density threshold (default: median + max(3 robust σ, "
                        "10%% of max - median))")
    parser.add_argument("--resolution", type=positive_float, default=d.resolution_angstrom,
                        help="target resolution in Å: Gaussian widths and refinement limit (default %(default)s)")
    parser.add_argument("--combine", action="store_true", help="add pseudoatoms on density the model leaves unexplained")
    parser.add_argument("--mask-radius", type=nonnegative_float, help="Å around model atoms removed before seeding pseudoatoms "
                        "(default max(3, resolution/2))")
    parser.add_argument("--refine-steps", type=nonnegative_int, default=d.refine_steps, help="refinement steps (0: none; default %(default)s)")
    parser.add_argument("--bond-weight", type=nonnegative_float, default=d.bond_weight,
                        help="weight of the Cα bond/angle regularizer during refinement (default %(default)s)")
    parser.add_argument("--angle-weight", type=nonnegative_float, default=d.angle_weight,
                        help="weight of angles (rad²) relative to bond lengths (Å²) (default %(default)s)")
    parser.add_argument("--weighting", choices=["projection", "uniform"], default=d.weighting,
                        help="Fourier weighting of the refinement (default %(default)s: equivalent to all projections)")
    parser.add_argument("--small-gmm", type=nonnegative_int, default=d.small_gmm,
                        help="also build a small GMM of this many Gaussians (< 100) and the transition matrix")
    parser.add_argument("--small-from", choices=["kmeans", "map"], default=d.small_from,
                        help="small GMM by k-means of the GMM or fitted to the map (default %(default)s)")
    parser.add_argument("--small-resolution", type=positive_float, default=d.small_resolution_angstrom,
                        help="resolution in Å of a small GMM fitted to the map (default %(default)s)")
    parser.add_argument("--transition-s", type=positive_float, help="transition kernel width s in Å (default 0.1 × box length)")
    parser.add_argument("--mask", action="append", default=[], metavar="NAME=SPEC",
                        help="domain mask: NAME=chain:A:120-200, NAME=residues:A:1-50,B:3-9, NAME=index:0-99, "
                        "NAME=map:mask.mrc[@threshold]; repeatable")
    parser.add_argument("--seed", type=int, default=d.seed, help="k-means seed (default %(default)s)")
    parser.add_argument("--threads", type=positive_int, default=d.threads,
                        help="torch CPU threads during refinement (default %(default)s: its products are small)")
    parser.add_argument("--out", required=True, help="output folder (written whole on success)")
    add_shared_options(parser, "--overwrite")


def run(args: argparse.Namespace) -> int:
    opts = BuildOptions(
        map_path=args.map, out_dir=args.out, model_path=args.model, selection=args.selection, chains=args.chains,
        residues=args.residues, n_gaussians=args.n_gaussians, n_pseudoatoms=args.n_pseudoatoms,
        threshold=args.threshold, resolution_angstrom=args.resolution, combine=args.combine,
        mask_radius_angstrom=args.mask_radius, refine_steps=args.refine_steps, bond_weight=args.bond_weight,
        angle_weight=args.angle_weight, weighting=args.weighting, small_gmm=args.small_gmm,
        small_from=args.small_from, small_resolution_angstrom=args.small_resolution,
        transition_s_angstrom=args.transition_s, masks=list(args.mask), seed=args.seed, threads=args.threads,
    )
    from ..io.atomic import staged_folder

    with staged_folder(args.out, overwrite=args.overwrite) as tmp:
        build_neutral_gmm(opts, write_dir=tmp)
    return 0
