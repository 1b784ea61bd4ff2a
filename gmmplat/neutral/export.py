"""Files for looking at a built GMM next to the consensus map (ChimeraX, any MRC viewer).

* :func:`write_centres_pdb`: one HETATM pseudo-atom per Gaussian at its world
  position; residue ``GMM`` (model Gaussians, chains A, B, …) or ``PSA``
  (pseudoatoms, chains P, Q, …), residue number = Gaussian index + 1 within
  blocks of 9999, B-factor column = σ (Å), occupancy = amplitude / max amplitude.
* :func:`write_gmm_map`: the rendered GMM on the consensus map's grid (same
  voxel size and origin), so both overlay exactly.
"""
from __future__ import annotations

import os

import gemmi
import numpy as np

from ..io.atomic import atomic_write_path
from ..io.mrc import write_map
from ..model.gmm import AMPLITUDE, GMM, WIDTH, render_map

_CHAINS = {0: "ABCDEFGHIJKLMNO", 1: "PQRSTUVWXYZ"}
_BLOCK = 9999


def write_centres_pdb(path: str | os.PathLike, gmm: GMM) -> None:
    """Gaussian centres as a PDB file in world coordinates (atomically)."""
    world = gmm.world_xyz_angstrom()
    if world.size and (world.min() <= -1000 or world.max() >= 10000):
        raise ValueError("Gaussian centres outside the PDB coordinate range")
    p = gmm.params.detach().double().numpy()
    amax = max(float(p[:, AMPLITUDE].max()), 1e-30) if gmm.n else 1.0
    origin = np.asarray(gmm.extras.get("origin", np.zeros(gmm.n)), dtype=np.int64)
    st = gemmi.Structure()
    st.name = "gmm_centres"
    model = gemmi.Model(1)
    chains: dict[str, gemmi.Chain] = {}
    counters = {0: 0, 1: 0}
    for i in range(gmm.n):
        kind = 1 if origin[i] == 1 else 0
        block, number = divmod(counters[kind], _BLOCK)
        counters[kind] += 1
        names = _CHAINS[kind]
        if block >= len(names):
            raise ValueError(f"too many Gaussians for a PDB file ({gmm.n})")
        cid = names[block]
        if cid not in chains:
            chains[cid] = gemmi.Chain(cid)
        res = gemmi.Residue()
        res.name = "PSA" if kind else "GMM"
        res.seqid = gemmi.SeqId(number + 1, " ")
        res.het_flag = "A"  # ATOM records (HETATM would add a HET header line per Gaussian)
        atom = gemmi.Atom()
        atom.name, atom.element = "C", gemmi.Element("C")
        atom.pos = gemmi.Position(*world[i])
        atom.b_iso, atom.occ = float(p[i, WIDTH]), float(np.clip(p[i, AMPLITUDE] / amax, 0.0, 1.0))
        res.add_atom(atom)
        chains[cid].add_residue(res)
    for c in chains.values():
        model.add_chain(c)
    st.add_model(model)
    options = gemmi.PdbWriteOptions()
    options.cryst1_record = False
    with atomic_write_path(path) as tmp:
        st.write_pdb(str(tmp), options)


def write_gmm_map(path: str | os.PathLike, gmm: GMM, origin_angstrom) -> np.ndarray:
    """Render ``gmm`` and write it with the consensus map's ``origin_angstrom`` (x, y, z); returns the map."""
    import torch

    with torch.no_grad():
        vol = render_map(gmm.params, gmm.box, gmm.pixel_size_angstrom).numpy()
    write_map(path, vol, gmm.pixel_size_angstrom, origin_angstrom)
    return vol
