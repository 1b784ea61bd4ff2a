"""Shared tiny inputs for the build tests (no tests here): a 3-helix bundle, its map, PDB files.

The bundle is built with :mod:`gmmplat.synthetic.structures` (ideal helices,
Cα–Cα exactly 3.80 Å); the map is the sum of one Gaussian per atom (electron
count, σ for 4.5 Å) rendered on a 32³ grid of 1.5 Å voxels with a non-zero
header origin, so every frame conversion is exercised.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from gmmplat.io import write_map
from gmmplat.model.gmm import render_map
from gmmplat.synthetic.structures import AtomicModel, Helix, build_chain

BOX, APIX = 32, 1.5
ORIGIN = np.array([-31.0, 12.5, 103.0])  # world position of voxel (0, 0, 0)
CENTRE_WORLD = ORIGIN + (BOX // 2) * APIX
HELIX_RESIDUES = 10


def bundle() -> AtomicModel:
    """Three antiparallel 10-residue helices joined by loops, centred near the origin (chain A)."""
    helices = []
    for i, a in enumerate(np.radians([0.0, 120.0, 240.0])):
        radial = (math.cos(a), math.sin(a), 0.0)
        helices.append(Helix((6.0 * radial[0], 6.0 * radial[1], 0.0), (0, 0, 1 if i % 2 == 0 else -1),
                             HELIX_RESIDUES, 0.0, radial))
    return AtomicModel.from_traces({"A": build_chain(helices)})


def third_helix_residues(model: AtomicModel) -> np.ndarray:
    """Residue numbers (1-based) of the third helix."""
    trace = model.chains["A"]
    return np.nonzero(trace.helix_index == 2)[0] + 1


def write_model(path, model: AtomicModel, keep: np.ndarray | None = None, shift=(0.0, 0.0, 0.0)) -> None:
    """PDB of ``model`` in world coordinates (box frame + CENTRE_WORLD + shift), optionally only atoms ``keep``."""
    xyz = model.xyz + CENTRE_WORLD + np.asarray(shift)
    st = model.to_structure(xyz)
    if keep is not None:
        from gmmplat.io.models import _keep_only

        _keep_only(st, set(np.flatnonzero(keep).tolist()))
    st.write_pdb(str(path))


def model_map(model: AtomicModel, resolution_angstrom: float = 4.5, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Density ``[z, y, x]`` of the model in the box frame: electron-count Gaussians of σ = d/(π√2)."""
    sigma = resolution_angstrom / (math.pi * math.sqrt(2))
    p = torch.tensor(np.c_[model.xyz, model.electrons, np.full(model.n_atoms, sigma)], dtype=torch.float32)
    vol = render_map(p, BOX, APIX).numpy()
    if noise:
        vol = vol + np.random.default_rng(seed).normal(0.0, noise * vol.max(), vol.shape).astype(np.float32)
    return vol


def write_model_map(path, model: AtomicModel, **kw) -> np.ndarray:
    vol = model_map(model, **kw)
    write_map(path, vol, APIX, ORIGIN)
    return vol
