"""The particle-input options every verb that reads particles shares.

A verb calls :func:`add_particle_arguments` in its ``add_arguments`` and
:func:`open_particles` (or :func:`particle_source`) in its ``run``::

    --star FILE | --cs FILE [--passthrough P.cs] [--datadir DIR]
    [--amplitude-contrast Q0] [--voltage KV] [--cs-mm MM]

``--cs`` is the cryoSPARC particle file, so the spherical aberration a STAR file
may lack is ``--cs-mm``.  Values given for missing CTF columns are printed when used.
"""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import ConfigError

__all__ = ["add_particle_arguments", "particle_source", "open_particles", "print_notes"]


def add_particle_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    """Add ``--star | --cs``, ``--passthrough``, ``--datadir/--project-dir`` and the CTF-value options."""
    g = p.add_argument_group("particles (RELION STAR or cryoSPARC .cs)")
    src = g.add_mutually_exclusive_group(required=required)
    src.add_argument("--star", help="RELION 3.0/3.1 particle STAR file with poses and CTF")
    src.add_argument("--cs", help="cryoSPARC particle file (.cs) with poses and CTF")
    g.add_argument("--passthrough", metavar="P.cs", help="with --cs: passthrough .cs holding the fields it lacks")
    g.add_argument("--datadir", "--project-dir", dest="datadir", metavar="DIR",
                   help="folder that relative image paths start from (RELION/cryoSPARC project folder; "
                        "default: the particle file's folder or one of its 3 parents)")
    g.add_argument("--amplitude-contrast", type=float, metavar="Q0",
                   help="amplitude contrast for files without one (e.g. RELION 3.0 STAR without rlnAmplitudeContrast)")
    g.add_argument("--voltage", type=float, metavar="KV", help="acceleration voltage (kV) for files without one")
    g.add_argument("--cs-mm", type=float, metavar="MM", help="spherical aberration (mm) for files without one")


def particle_source(args: argparse.Namespace):
    """The :class:`~gmmplat.io.particles.ParticleSource` the options describe (absolute paths)."""
    from ..io.particles import ParticleSource, is_cs

    star, cs = getattr(args, "star", None), getattr(args, "cs", None)
    if cs is not None and not is_cs(cs):
        raise ConfigError(f"--cs expects a cryoSPARC particle file ending in .cs, got {cs}")
    if star is not None and is_cs(star):
        raise ConfigError(f"{star} is a cryoSPARC file: give it with --cs, not --star")
    if args.passthrough is not None and cs is None:
        raise ConfigError("--passthrough goes with --cs (a cryoSPARC particle file)")
    for name, value, low, high in (("--amplitude-contrast", args.amplitude_contrast, 0.0, 1.0),
                                   ("--voltage", args.voltage, 1.0, 5000.0), ("--cs-mm", args.cs_mm, 0.0, 100.0)):
        if value is not None and not low <= value <= high:
            raise ConfigError(f"{name} {value:g} is outside {low:g}..{high:g}")
    return ParticleSource(
        path=os.path.abspath(cs if cs is not None else star),
        passthrough=None if args.passthrough is None else os.path.abspath(args.passthrough),
        datadir=None if args.datadir is None else os.path.abspath(args.datadir),
        amplitude_contrast=args.amplitude_contrast, voltage_kv=args.voltage, cs_mm=args.cs_mm)


def open_particles(args: argparse.Namespace, require_poses: bool = True, require_ctf: bool = True):
    """Read the particles the options name (:class:`~gmmplat.io.star.ParticleStar`); print the reader's notes."""
    particles = particle_source(args).read(require_poses=require_poses, require_ctf=require_ctf)
    print_notes(particles.notes)
    return particles


def print_notes(notes, file=None) -> None:
    """Print each value the reader took from an option, one line each."""
    for line in notes:
        print(f"note: {line}", file=file or sys.stdout)
