"""``gmmplat analyze``: trajectories along latent PCs, maps per frame, morphed models, plots.

Examples::

    gmmplat analyze --run runs/hinge
    gmmplat analyze --run runs/hinge --pcs 3 --frames 10 --model neutral_model.pdb --map consensus_map.mrc
    gmmplat analyze --run runs/hinge --reconstruct 300 --truth truth.csv --states 4

Writes into ``--out`` (default ``RUN/analysis``): ``pca.json``, ``latent_pca.png``,
``pc_histograms.png``, ``trajectories.npy`` (k, n, d) and ``trajectories.csv``,
``maps/pcP_frameNN.mrc`` (decoded GMM), ``recon/pcP_frameNN.mrc`` (with
``--reconstruct K``), ``models/pcP.pdb`` + ``.cif`` with ``pcP_displacement.csv``,
``pcP_per_residue.csv``, ``displacement_pcP.png``, ``per_residue_pcP.png`` (with
``--model``), ``rigid_pcP_<domain>.csv`` + ``.png`` (GMMs with domain masks) and
``kmeans.npz`` (with ``--states``), ``scores.json`` (with ``--truth``), and ``chimerax.cxc`` (+ ``domains.cmm``) that shows it
all in ChimeraX (``chimerax RUN/analysis/chimerax.cxc``).  The work is
:func:`gmmplat.analysis.pipeline.analyze_run`; see docs/analysis.md.
"""
from __future__ import annotations

import argparse

from ._common import add_shared_options, nonnegative_int, positive_float, positive_int



def add_arguments(p: argparse.ArgumentParser) -> None:
    add_shared_options(p, "--run")
    p.add_argument("--out", help="output folder (default RUN/analysis), written whole on success")
    add_shared_options(p, "--overwrite")
    p.add_argument("--pcs", type=positive_int, default=None,
                   help="trajectories along the first N principal components (default 3, or d if the latent has fewer)")
    p.add_argument("--frames", type=positive_int, default=10, help="frames per trajectory (default 10)")
    p.add_argument("--model", help="atomic model fitted in the consensus map (PDB/mmCIF) to morph")
    p.add_argument("--map", help="consensus map: maps are written with its voxel size and origin")
    p.add_argument("--latent", help="latent .npy to analyse instead of RUN/latent.npy")
    p.add_argument("--truth", help="truth.csv of a simulated dataset: colours the latent plot by t, writes scores.json")
    add_shared_options(p, "--truth-frames")
    p.add_argument("--reconstruct", type=nonnegative_int, default=0, metavar="K",
                   help="also reconstruct each frame from its K nearest particles (default 0: off)")
    p.add_argument("--snr", type=positive_float, default=1.0, help="Wiener term 1/SNR of the reconstructions (default 1)")
    p.add_argument("--states", type=nonnegative_int, default=0, help="k-means states of the latent (default 0: off)")
    add_shared_options(p, "--s-angstrom", "--morph-reference", "--no-progress")
    p.add_argument("--seed", type=int, default=0, help="seed of k-means and of the scores' cross-validation folds (default 0)")
    from .particle_args import add_particle_arguments

    add_particle_arguments(p, required=False)  # --reconstruct: the run's particles, unless named here
    add_shared_options(p, "--allow-other-particles")


def run(args: argparse.Namespace) -> int:
    from ..analysis.pipeline import analyze_run
    from ..errors import ConfigError
    from .particle_args import open_particles, particle_file_given

    particles = None
    if args.allow_other_particles and args.reconstruct == 0:
        raise ConfigError("--allow-other-particles goes with --reconstruct K (without it no particle is read)")
    if particle_file_given(args):
        if args.reconstruct == 0:
            raise ConfigError("--star/--cs name the particles of --reconstruct K; without --reconstruct no particle is read")
        particles = open_particles(args)
    result = analyze_run(
        args.run, args.out, pcs=args.pcs, frames=args.frames, model=args.model, map_path=args.map,
        latent=args.latent, truth=args.truth, truth_frames=args.truth_frames, reconstruct=args.reconstruct,
        snr=args.snr, particles=particles, states=args.states, s_angstrom=args.s_angstrom, seed=args.seed,
        morph_reference=args.morph_reference,
        overwrite=args.overwrite, progress=not args.no_progress, allow_other_particles=args.allow_other_particles)
    print(f"{result.summary} written to {result.out}")
    return 0
