"""CTF pinned against an independent NumPy transcription of RELION's ctf.h."""
import math

import numpy as np
import pytest
import torch

from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import Band


def relion_ctf(du, dv, angle_deg, kv, cs_mm, q, phase_deg, bfac, box, apix):
    """RELION CTF::getCTF on the centred rfft grid (FFT row order), written from ctf.h."""
    V = kv * 1e3
    lam = 12.2643247 / math.sqrt(V * (1.0 + V * 0.978466e-6))
    K1 = math.pi * lam
    K2 = math.pi / 2 * cs_mm * 1e7 * lam**3
    K3 = math.atan(q / math.sqrt(1 - q * q))
    K4 = -bfac / 4.0
    K5 = math.radians(phase_deg)
    defocus_average = -(du + dv) * 0.5
    defocus_deviation = -(du - dv) * 0.5
    Y, X = np.meshgrid(np.fft.fftfreq(box, apix), np.fft.rfftfreq(box, apix), indexing="ij")
    u2 = X * X + Y * Y
    ang = np.arctan2(Y, X) - math.radians(angle_deg)
    deltaf = np.where(u2 > 0, defocus_average + defocus_deviation * np.cos(2 * ang), 0.0)
    argument = K1 * deltaf * u2 + K2 * u2 * u2 - K5 - K3
    return -np.sin(argument) * np.exp(K4 * u2)


CASES = [
    (15000.0, 14000.0, 30.0, 300.0, 2.7, 0.1, 0.0, 0.0, 64, 1.5),
    (22000.0, 21000.0, -75.0, 200.0, 2.0, 0.07, 0.0, 80.0, 65, 1.2),
    (9000.0, 12000.0, 110.0, 300.0, 0.01, 0.1, 60.0, 20.0, 48, 2.0),  # V > U
]


@pytest.mark.parametrize("case", CASES)
def test_ctf_matches_relion(case):
    du, dv, ang, kv, cs, q, ph, bf, box, apix = case
    p = CTFParams.from_values(
        1, defocus_u_angstrom=du, defocus_v_angstrom=dv, defocus_angle_deg=ang, voltage_kv=kv,
        cs_mm=cs, amplitude_contrast=q, phase_shift_deg=ph, bfactor=bf,
    )
    ours = ctf_rfft(p, box, apix)[0].double().numpy()
    ref = relion_ctf(du, dv, ang, kv, cs, q, ph, bf, box, apix)
    assert np.abs(ours - ref).max() < 2e-3


def test_ctf_zero_frequency_is_plus_amplitude_contrast():
    p = CTFParams.from_values(
        2, defocus_u_angstrom=[10000.0, 30000.0], defocus_v_angstrom=[10000.0, 29000.0],
        defocus_angle_deg=0.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1,
    )
    assert torch.allclose(ctf_rfft(p, 32, 1.0)[:, 0, 0], torch.tensor([0.1, 0.1]), atol=1e-5)


def test_ctf_zeros_at_analytic_frequencies():
    """Cs = 0, Q = 0, no astigmatism: zeros where π λ Δf k² = n π, i.e. k = sqrt(n / (λ Δf))."""
    box, apix, df = 256, 1.0, 20000.0
    p = CTFParams.from_values(
        1, defocus_u_angstrom=df, defocus_v_angstrom=df, defocus_angle_deg=0.0,
        voltage_kv=300.0, cs_mm=0.0, amplitude_contrast=0.0,
    )
    ctf = ctf_rfft(p, box, apix)[0, 0].double().numpy()  # ky = 0 row, kx = 0 .. 0.5 / Å
    lam = 12.2643247 / math.sqrt(300e3 * (1 + 300e3 * 0.978466e-6))
    k = np.fft.rfftfreq(box, apix)
    for n in (1, 2, 3):
        kn = math.sqrt(n / (lam * df))
        i = int(np.argmin(np.abs(k - kn)))
        # a sign change brackets the analytic zero within one Fourier pixel
        lo, hi = (i - 1, i) if k[i] > kn else (i, i + 1)
        assert ctf[lo] * ctf[hi] <= 0, (n, kn, k[lo], k[hi])
        assert abs(k[i] - kn) < 1 / (box * apix)


def test_ctf_band_crop_matches_full_grid():
    p = CTFParams.from_values(
        3, defocus_u_angstrom=[9000.0, 15000.0, 20000.0], defocus_v_angstrom=12000.0,
        defocus_angle_deg=20.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1, bfactor=30.0,
    )
    band = Band(64, 1.5, high_res_angstrom=6.0)
    full = ctf_rfft(p, 64, 1.5)
    assert torch.allclose(band.crop(full), ctf_rfft(p, 64, 1.5, band))
