"""Tiny synthetic particle sets for the data and training tests (helpers only, no tests here).

A neutral GMM of a few dozen Gaussians; the Gaussians of mask ``domain`` move along x by
``t · shift_angstrom`` with t ~ U(-1, 1) per particle; projections (separable projector,
RELION CTF) plus Gaussian noise are written as an MRC stack and a RELION 3.1 STAR file.
"""
from __future__ import annotations

import math
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import torch

from gmmplat.io.star import TABLE_COLUMNS, write_particle_star
from gmmplat.model.gmm import GMM
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import Band
from gmmplat.physics.geometry import euler_to_matrix
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import PROJECTORS


def make_neutral(box: int = 24, apix: float = 4.0, n: int = 24, seed: int = 0) -> GMM:
    """Two lobes along x; ``mask__domain`` is the +x lobe.  Extras: a small GMM + transition, a Cα chain."""
    g = np.random.default_rng(seed)
    half = n // 2
    core = g.normal([-8.0, 0, 0], [4.0, 6.0, 6.0], size=(half, 3))
    dom = g.normal([10.0, 0, 0], [3.0, 4.0, 4.0], size=(n - half, 3))
    xyz = np.concatenate([core, dom])
    mask = np.zeros(n, bool)
    mask[half:] = True
    small = np.array([[-8.0, 0, 0, 1.0, 6.0], [10.0, 0, 0, 1.0, 5.0]], np.float32)
    d2 = ((xyz[None, :, :] - small[:, None, :3]) ** 2).sum(-1)
    transition = np.exp(-d2 / (2 * 8.0**2)).astype(np.float32)
    bonds = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
    lengths = np.linalg.norm(xyz[1:] - xyz[:-1], axis=1).astype(np.float32)
    extras = {"mask__domain": mask, "small_params": small, "transition": transition,
              "bonds": bonds.astype(np.int64), "bond_length_angstrom": lengths,
              "angles": np.zeros((0, 3), np.int64), "angle_deg": np.zeros(0, np.float32)}
    return GMM.from_arrays(xyz, 1.0, 1.6 * apix, box, apix, extras=extras)


def moved_params(neutral: GMM, t: np.ndarray, shift_angstrom: float = 5.0) -> torch.Tensor:
    p = neutral.params[None].repeat(len(t), 1, 1).clone()
    mask = torch.as_tensor(neutral.masks()["domain"])
    p[:, mask, 0] += torch.as_tensor(t, dtype=torch.float32)[:, None] * shift_angstrom
    return p


def make_dataset(folder, n: int = 48, box: int = 24, apix: float = 4.0, snr: float | None = 1.0, seed: int = 0,
                 n_gaussians: int = 24, shift_angstrom: float = 5.0, origin_sd_angstrom: float = 1.0):
    """Write ``folder/particles.star``, ``folder/stack.mrcs``, ``folder/gmm.npz``; return (star, gmm, t).

    Origins (rlnOriginX/YAngst) are drawn from N(0, ``origin_sd_angstrom``) per axis."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(seed)
    neutral = make_neutral(box, apix, n_gaussians, seed)
    t = g.uniform(-1, 1, n)
    angles = np.stack([g.uniform(-180, 180, n), np.degrees(np.arccos(g.uniform(-1, 1, n))), g.uniform(-180, 180, n)], 1)
    shifts = g.normal(0, origin_sd_angstrom, size=(n, 2))
    defocus = g.uniform(8000, 15000, n)
    ctf = CTFParams.from_values(n, defocus_u_angstrom=defocus, defocus_v_angstrom=defocus - 100,
                                defocus_angle_deg=30.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    band = Band(box, apix)
    image_model = ImageModel(band, PROJECTORS.build("separable", band))
    A = euler_to_matrix(angles[:, 0], angles[:, 1], angles[:, 2]).float()
    with torch.no_grad():
        F = image_model.project(moved_params(neutral, t, shift_angstrom), A,
                                torch.as_tensor(shifts, dtype=torch.float32), ctf_rfft(ctf, box, apix, band).float())
        images = band.band_to_images(F).numpy().astype(np.float32)
    if snr is not None:
        sd = images.std() / math.sqrt(snr)
        images = images + g.normal(0, sd, images.shape).astype(np.float32)
    stack = folder / "stack.mrcs"
    with mrcfile.new(stack, overwrite=True) as m:
        m.set_data(images)
        m.voxel_size = apix
    table = pd.DataFrame({
        "stack_path": [str(stack)] * n, "image_index": np.arange(n), "rot_deg": angles[:, 0],
        "tilt_deg": angles[:, 1], "psi_deg": angles[:, 2], "shift_x_angstrom": shifts[:, 0],
        "shift_y_angstrom": shifts[:, 1], "defocus_u_angstrom": defocus, "defocus_v_angstrom": defocus - 100,
        "defocus_angle_deg": 30.0, "voltage_kv": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1,
        "phase_shift_deg": 0.0, "bfactor": 0.0, "pixel_size_angstrom": apix, "box_size": float(box),
        "optics_group": 1,
    })[TABLE_COLUMNS]
    star = folder / "particles.star"
    write_particle_star(star, table)
    gmm_path = folder / "gmm.npz"
    neutral.save(gmm_path)
    return star, gmm_path, t


def overwrite_images(stack, values: dict[int, np.ndarray | float]) -> None:
    """Replace images of an existing stack (index -> array or scalar fill)."""
    with mrcfile.open(stack, mode="r+") as m:
        data = m.data.copy()
        for i, v in values.items():
            data[i] = v
        m.set_data(data)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors on a shared 2-core machine run several times faster on one thread
    (autouse in every test module that imports it)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
