"""File input/output: MRC maps, RELION STAR and cryoSPARC .cs particle files, particle stacks, atomic models.

Every problem with a user's file raises :class:`gmmplat.errors.InputError`
(one line naming the file and the problem); every file is written atomically
(:func:`atomic_write_path`). See ``docs/io.md``.
"""
from __future__ import annotations

from gmmplat.io.atomic import atomic_write_path
from gmmplat.io.models import SELECTION_KINDS, AtomModel, read_model, select_atoms, write_models
from gmmplat.io.mrc import MapData, box_centre_world_angstrom, open_mrc_checked, read_map, write_map
from gmmplat.io.stacks import ParticleStack, StackInfo, StackReader
from gmmplat.io.star import TABLE_COLUMNS, ParticleStar, read_particle_star, write_particle_star
from gmmplat.io.cryosparc import read_particle_cs
from gmmplat.io.particles import ParticleSource, read_particles
from gmmplat.io.symmetry import symmetry_expand_table

__all__ = [
    "atomic_write_path",
    "MapData", "read_map", "write_map", "box_centre_world_angstrom", "open_mrc_checked",
    "ParticleStar", "TABLE_COLUMNS", "read_particle_star", "write_particle_star",
    "read_particle_cs", "read_particles", "ParticleSource", "symmetry_expand_table",
    "StackReader", "ParticleStack", "StackInfo",
    "AtomModel", "SELECTION_KINDS", "read_model", "select_atoms", "write_models",
]
