"""What :func:`gmmplat.analysis.pipeline.analyze_run` writes per trajectory frame.

Each function writes into an analysis folder ``out`` (files written atomically):
decoded maps, reconstructions from the particles nearest each frame, morphed atomic
models with their displacement tables and plots, and the rigid motion of each domain.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..io.atomic import atomic_write_path
from . import plots
from .maps import decoded_maps, reconstruct_near, write_volume
from .morph import displacement, per_residue_displacement, write_morphed_models
from .rigid_report import rigid_motion

DecodeFn = Callable[[torch.Tensor], torch.Tensor]


def write_csv(path: str | os.PathLike, table) -> None:
    """A pandas table as CSV without its index, written atomically."""
    with atomic_write_path(path) as tmp:
        table.to_csv(tmp, index=False)


def write_decoded_maps(out: Path, pc: int, z: np.ndarray, decode_fn: DecodeFn, box: int, apix: float,
                       origin_angstrom: np.ndarray) -> None:
    """``maps/pcP_frameNN.mrc``: the decoded GMM at each latent point ``z (F, d)``."""
    (out / "maps").mkdir(exist_ok=True)
    for j, vol in enumerate(decoded_maps(decode_fn, z, box, apix)):
        write_volume(out / "maps" / f"pc{pc}_frame{j:02d}.mrc", vol, apix, origin_angstrom)


def write_reconstructions(out: Path, pc: int, z: np.ndarray, latent: np.ndarray, k: int, particles, read_image,
                          apix: float, origin_angstrom: np.ndarray, symmetry_operators=None, snr: float = 1.0,
                          invert_contrast: bool = False) -> None:
    """``recon/pcP_frameNN.mrc``: each frame reconstructed from its ``k`` nearest particles.

    ``particles`` is the particle table (rows as the latent's), ``read_image(i) -> (M, M)``.
    """
    (out / "recon").mkdir(exist_ok=True)
    for j in range(len(z)):
        vol, _ = reconstruct_near(latent, z[j], k, particles, read_image, apix, symmetry_operators, snr=snr,
                                  invert_contrast=invert_contrast)
        write_volume(out / "recon" / f"pc{pc}_frame{j:02d}.mrc", vol, apix, origin_angstrom)


def write_morph_outputs(out: Path, pc: int, z: np.ndarray, decode_fn: DecodeFn, morpher, atom_model) -> None:
    """``models/pcP.pdb`` + ``.cif`` (one model per frame), per-atom and per-residue
    displacement tables and their plots."""
    import pandas as pd

    (out / "models").mkdir(exist_ok=True)
    frames = morpher.morph(decode_fn, z)
    write_morphed_models(out / "models" / f"pc{pc}.pdb", atom_model, frames)
    d = displacement(frames)
    per_atom = {"chain_id": atom_model.chain_id, "residue_number": atom_model.residue_number,
                "residue_name": atom_model.residue_name, "atom_name": atom_model.atom_name,
                "displacement_angstrom": d}
    write_csv(out / "models" / f"pc{pc}_displacement.csv", pd.DataFrame(per_atom))
    res = per_residue_displacement(atom_model, d)
    write_csv(out / "models" / f"pc{pc}_per_residue.csv", res)
    plots.displacement_histogram_png(out / f"displacement_pc{pc}.png", d, title=f"PC {pc}: first to last frame")
    plots.per_residue_png(out / f"per_residue_pc{pc}.png", res, title=f"PC {pc}")


def write_rigid_reports(out: Path, pc: int, z: np.ndarray, scores: np.ndarray, decode_fn: DecodeFn,
                        neutral_params: torch.Tensor, masks: dict[str, np.ndarray]) -> None:
    """``rigid_pcP_<domain>.csv`` + ``.png``: rotation per frame of each mask with >= 3 Gaussians.

    ``scores (F,)`` are the frames' PC scores (the table's ``score`` column).
    """
    for name, mask in masks.items():
        if int(np.sum(mask)) < 3:
            continue
        rep = rigid_motion(decode_fn, z, neutral_params, mask)
        rep.insert(1, "score", scores)
        write_csv(out / f"rigid_pc{pc}_{name}.csv", rep)
        plots.rigid_motion_png(out / f"rigid_pc{pc}_{name}.png", rep, title=f"domain {name}, PC {pc}")
