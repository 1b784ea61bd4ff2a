"""Backprojection of particles (gmmplat.analysis.maps.reconstruct) against the truth map.

Particles are simulated by an independent real-space path: analytic line
integrals of 3D Gaussians at RELION poses and shifts, computed on a box twice
as large (the CTF delocalises signal as on a real micrograph), multiplied by the
CTF in Fourier space and cropped.  The truth map holds the Gaussians evaluated
at voxel centres in real space.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gmmplat.analysis.maps import fsc_curve, reconstruct, reconstruct_near
from gmmplat.errors import ConfigError
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import image_to_rfft, rfft_to_image
from gmmplat.physics.geometry import matrix_to_euler, random_rotations

BOX, APIX = 32, 2.0


def _gaussians(seed=3, n=12):
    g = np.random.default_rng(seed)
    xyz = g.uniform(-9, 9, (n, 3))
    amp = g.uniform(0.5, 1.5, n)
    sig = g.uniform(1.6, 2.4, n) * APIX / 2 * 1.5  # 2.4–3.6 Å, ≥ 1.2 px
    return xyz, amp, sig


def truth_map(xyz, amp, sig, box=BOX, apix=APIX):
    """ρ at voxel centres [z, y, x], evaluated in real space."""
    c = (np.arange(box) - box // 2) * apix
    Z, Y, X = np.meshgrid(c, c, c, indexing="ij")
    vol = np.zeros((box,) * 3)
    for (x, y, z), a, s in zip(xyz, amp, sig):
        vol += a * np.exp(-((X - x) ** 2 + (Y - y) ** 2 + (Z - z) ** 2) / (2 * s * s))
    return torch.as_tensor(vol, dtype=torch.float32)


def simulate(xyz, amp, sig, A, shifts, ctf, box=BOX, apix=APIX):
    """Line integrals ∫ρ dz of the Gaussians, image = projection translated by -origin (RELION), CTF applied."""
    big = 2 * box
    c = (np.arange(big) - big // 2) * apix
    Y, X = np.meshgrid(c, c, indexing="ij")
    images = np.zeros((len(A), big, big))
    for b in range(len(A)):
        p = (A[b].numpy() @ xyz.T).T[:, :2] - shifts[b].numpy()
        for (px, py), a, s in zip(p, amp, sig):
            images[b] += a * math.sqrt(2 * math.pi) * s * np.exp(-((X - px) ** 2 + (Y - py) ** 2) / (2 * s * s))
    img = torch.as_tensor(images, dtype=torch.float32)
    if ctf is not None:
        img = rfft_to_image(image_to_rfft(img) * ctf_rfft(ctf, big, apix), big)
    lo = big // 2 - box // 2
    return img[:, lo : lo + box, lo : lo + box]


@pytest.fixture(scope="module")
def particles():
    n = 250
    g = torch.Generator().manual_seed(1)
    A = random_rotations(n, g)
    shifts = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * 4.0
    rng = np.random.default_rng(2)
    du = rng.uniform(4000, 9000, n)
    ctf = CTFParams.from_values(n, defocus_u_angstrom=du, defocus_v_angstrom=du - 300, defocus_angle_deg=rng.uniform(0, 180, n),
                                voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    xyz, amp, sig = _gaussians()
    images = simulate(xyz, amp, sig, A, shifts, ctf)
    return dict(A=A, shifts=shifts, ctf=ctf, images=images, truth=truth_map(xyz, amp, sig), xyz=xyz, amp=amp, sig=sig)


def test_backprojection_fsc_reaches_half_nyquist(particles):
    vol = reconstruct(particles["images"], particles["A"], particles["shifts"], particles["ctf"], APIX, snr=100.0)
    freq, fsc = fsc_curve(vol, particles["truth"], APIX)
    upto = freq <= 1 / (4 * APIX) + 1e-9
    assert fsc[upto].min() >= 0.8, fsc
    # density scale: the reconstruction matches the truth map's peak height within 15 %
    assert abs(float(vol.max()) / float(particles["truth"].max()) - 1) < 0.15


def test_conventions_matter(particles):
    """Aᵀ in place of A, or the opposite shift sign, breaks the reconstruction (the test can fail)."""
    p = particles
    kw = dict(snr=100.0, pad_factor=1.0)  # unpadded: fast, still discriminating
    good = fsc_curve(reconstruct(p["images"], p["A"], p["shifts"], p["ctf"], APIX, **kw), p["truth"], APIX)[1]
    transposed = reconstruct(p["images"], p["A"].transpose(-1, -2), p["shifts"], p["ctf"], APIX, **kw)
    flipped = reconstruct(p["images"], p["A"], -p["shifts"], p["ctf"], APIX, **kw)
    no_ctf = reconstruct(p["images"], p["A"], p["shifts"], None, APIX, **kw)
    for bad in (transposed, flipped, no_ctf):
        fsc = fsc_curve(bad, p["truth"], APIX)[1]
        assert fsc[1 : BOX // 4 + 1].mean() < good[1 : BOX // 4 + 1].mean() - 0.2


def test_reconstruct_near_selects_the_right_particles(particles):
    """Half the particles hold the structure, half a shifted copy; the latent separates them."""
    import pandas as pd

    p = particles
    n = len(p["A"])
    xyz2 = p["xyz"] + np.array([6.0, 0.0, 0.0])
    other = simulate(xyz2, p["amp"], p["sig"], p["A"], p["shifts"], p["ctf"])
    state = np.arange(n) % 2
    images = torch.where(torch.as_tensor(state == 1)[:, None, None], other, p["images"])
    latent = np.where(state[:, None] == 1, 1.0, -1.0) + np.random.default_rng(0).normal(0, 0.1, (n, 2))
    eul = matrix_to_euler(p["A"]).numpy()
    table = pd.DataFrame({
        "rot_deg": eul[:, 0], "tilt_deg": eul[:, 1], "psi_deg": eul[:, 2],
        "shift_x_angstrom": p["shifts"][:, 0].numpy(), "shift_y_angstrom": p["shifts"][:, 1].numpy(),
        **{f: getattr(p["ctf"], f).numpy() for f in ("defocus_u_angstrom", "defocus_v_angstrom", "defocus_angle_deg",
                                                        "voltage_kv", "cs_mm", "amplitude_contrast", "phase_shift_deg",
                                                        "bfactor")},
    })
    vol, idx = reconstruct_near(latent, [1.0, 1.0], 120, table, lambda i: images[i].numpy(), APIX, snr=100.0)
    assert np.all(state[idx] == 1)
    truth2 = truth_map(xyz2, p["amp"], p["sig"])
    fsc_right = fsc_curve(vol, truth2, APIX)[1][1 : BOX // 4 + 1].mean()
    fsc_wrong = fsc_curve(vol, p["truth"], APIX)[1][1 : BOX // 4 + 1].mean()
    assert fsc_right > 0.8 and fsc_right > fsc_wrong + 0.2
    with pytest.raises(ConfigError, match="particle table"):
        reconstruct_near(latent[:-1], [1.0, 1.0], 10, table, lambda i: images[i].numpy(), APIX)
