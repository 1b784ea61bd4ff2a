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

from ..errors import ConfigError, InputError
from ._common import existing_file, float_between

__all__ = ["add_particle_arguments", "particle_source", "open_particles", "print_notes", "particle_file_given"]

#: option -> (Namespace attribute, lowest, highest) of the CTF values a file may lack
CTF_OPTIONS = {"--amplitude-contrast": ("amplitude_contrast", 0.0, 1.0), "--voltage": ("voltage", 1.0, 5000.0),
               "--cs-mm": ("cs_mm", 0.0, 100.0)}


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
    helps = {"--amplitude-contrast": ("Q0", "amplitude contrast for files without one "
                                            "(e.g. RELION 3.0 STAR without rlnAmplitudeContrast)"),
             "--voltage": ("KV", "acceleration voltage (kV) for files without one"),
             "--cs-mm": ("MM", "spherical aberration (mm) for files without one")}
    for option, (_, low, high) in CTF_OPTIONS.items():
        metavar, text = helps[option]
        g.add_argument(option, type=float_between(low, high), metavar=metavar, help=f"{text}; {low:g}..{high:g}")
    g.add_argument("--trust-star-pixel-size", action="store_true", default=None,
                   help="use the particle file's pixel size where a stack header sets another (headers with an "
                        "unset value, 0 or 1 Å, are overridden anyway, with a note)")


def particle_file_given(args: argparse.Namespace) -> bool:
    """True when ``--star`` or ``--cs`` is given; refuses reader options given without one
    (verbs that otherwise read a run's particles with the options it was trained with)."""
    if getattr(args, "star", None) is not None or getattr(args, "cs", None) is not None:
        return True
    given = [o for o, a in (("--passthrough", "passthrough"), ("--datadir", "datadir"),
                            ("--trust-star-pixel-size", "trust_star_pixel_size"),
                            *((o, a) for o, (a, _, _) in CTF_OPTIONS.items())) if getattr(args, a, None) is not None]
    if given:
        raise ConfigError(f"{' and '.join(given)} only apply with --star or --cs; without them the run's particle file is "
                          "read with the options it was trained with")
    return False


def particle_source(args: argparse.Namespace):
    """The :class:`~gmmplat.io.particles.ParticleSource` the options describe (absolute paths)."""
    from ..io.particles import ParticleSource, is_cs

    star, cs = getattr(args, "star", None), getattr(args, "cs", None)
    if args.passthrough is not None and cs is None:
        raise ConfigError("--passthrough goes with --cs (a cryoSPARC particle file)")
    for option, value in (("--star", star), ("--cs", cs), ("--passthrough", args.passthrough)):
        if value is not None:
            existing_file(value, option, "particle file" if option != "--passthrough" else "passthrough .cs file")
    if cs is not None and not is_cs(cs):
        raise ConfigError(f"--cs expects a cryoSPARC particle file ending in .cs, got {cs}")
    if star is not None and is_cs(star):
        raise ConfigError(f"{star} is a cryoSPARC file: give it with --cs, not --star")
    if args.datadir is not None and not os.path.isdir(args.datadir):
        raise InputError(args.datadir, f"--datadir {'is not a folder' if os.path.exists(args.datadir) else 'not found'}")
    return ParticleSource(
        path=os.path.abspath(cs if cs is not None else star),
        passthrough=None if args.passthrough is None else os.path.abspath(args.passthrough),
        datadir=None if args.datadir is None else os.path.abspath(args.datadir),
        amplitude_contrast=args.amplitude_contrast, voltage_kv=args.voltage, cs_mm=args.cs_mm,
        trust_star_pixel_size=getattr(args, "trust_star_pixel_size", None) or None)


def open_particles(args: argparse.Namespace, require_poses: bool = True, require_ctf: bool = True):
    """Read the particles the options name (:class:`~gmmplat.io.star.ParticleStar`); print the reader's notes."""
    particles = particle_source(args).read(require_poses=require_poses, require_ctf=require_ctf)
    print_notes(particles.notes)
    return particles


def print_notes(notes, file=None) -> None:
    """Print each value the reader took from an option, one line each."""
    for line in notes:
        print(f"note: {line}", file=file or sys.stdout)
