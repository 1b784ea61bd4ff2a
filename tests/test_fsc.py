"""FSC curve, resolution at a threshold, CSV and PNG output."""
from __future__ import annotations

import numpy as np
import pytest

from gmmplat.physics.fsc import fsc_curve, plot_fsc, read_fsc_csv, resolution_at_threshold, write_fsc_csv


def _numpy_fsc(a, b, apix):
    """Independent reference: shells of rounded radius on the full FFT grid."""
    M = a.shape[0]
    Fa, Fb = np.fft.fftn(a), np.fft.fftn(b)
    k = np.fft.fftfreq(M) * M
    r = np.rint(np.sqrt(k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2)).astype(int)
    out = []
    for s in range(M // 2 + 1):
        m = r == s
        num = np.sum(Fa[m] * np.conj(Fb[m])).real
        out.append(num / np.sqrt(np.sum(np.abs(Fa[m]) ** 2) * np.sum(np.abs(Fb[m]) ** 2)))
    return np.arange(M // 2 + 1) / (M * apix), np.array(out)


def test_fsc_matches_reference_for_signal_plus_noise():
    rng = np.random.default_rng(0)
    M = 32
    k = np.fft.fftfreq(M)
    k2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + k[None, None, :] ** 2
    signal = np.fft.ifftn(np.fft.fftn(rng.normal(size=(M,) * 3)) * np.exp(-k2 / (2 * 0.08**2))).real
    signal *= 3 / signal.std()
    a = signal + rng.normal(size=signal.shape)
    b = signal + rng.normal(size=signal.shape)
    f, c = fsc_curve(a, b, 1.5)
    fr, cr = _numpy_fsc(a, b, 1.5)
    np.testing.assert_allclose(f, fr)
    assert c[1] > 0.9 and c[-1] < 0.2
    np.testing.assert_allclose(c[1:-1], cr[1:-1], atol=0.08)  # interpolated vs rounded shells


def test_identical_maps_reach_nyquist():
    a = np.random.default_rng(1).normal(size=(24,) * 3)
    f, c = fsc_curve(a, a, 2.0)
    np.testing.assert_allclose(c, 1.0, atol=1e-5)
    assert resolution_at_threshold(f, c) == pytest.approx(4.0)


def test_resolution_at_threshold_interpolates():
    f = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    c = np.array([1.0, 0.9, 0.7, 0.3, 0.1])
    assert resolution_at_threshold(f, c, 0.5) == pytest.approx(1 / 0.25)
    assert resolution_at_threshold(f, c, 0.95) == pytest.approx(1 / 0.1)  # already below at shell 1
    assert resolution_at_threshold(f, c, 0.143) == pytest.approx(1 / (0.3 + 0.1 * (0.3 - 0.143) / 0.2))


def test_csv_and_png(tmp_path):
    f = np.linspace(0, 0.25, 17)
    c = np.clip(1.2 - 4 * f, -0.1, 1.0)
    write_fsc_csv(tmp_path / "fsc.csv", f, c)
    f2, c2 = read_fsc_csv(tmp_path / "fsc.csv")
    np.testing.assert_allclose(f2, f, rtol=1e-5)
    np.testing.assert_allclose(c2, c, rtol=1e-5, atol=1e-7)
    header = (tmp_path / "fsc.csv").read_text().splitlines()[0]
    assert header == "shell,frequency_per_angstrom,resolution_angstrom,fsc"
    plot_fsc(tmp_path / "fsc.png", f, c)
    assert (tmp_path / "fsc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
