"""Fourier shell correlation between two maps, the resolution where it crosses a threshold, CSV and plot.

The curve comes from ``torch_fourier_shell_correlation.fsc``: one value per
shell ``i = 0 … M//2`` at spatial frequency ``i / (M · pixel_size)`` (1/Å),
shells interpolated linearly between neighbouring frequencies.

CSV layout (``write_fsc_csv``; read back by :func:`read_fsc_csv` and by the
viewers): columns ``shell, frequency_per_angstrom, resolution_angstrom, fsc``
(``resolution_angstrom`` is ``inf`` for shell 0).
"""
from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import torch
from torch_fourier_shell_correlation import fsc as _tfsc

from ..io.atomic import atomic_write_path

__all__ = ["fsc_curve", "resolution_at_threshold", "write_fsc_csv", "read_fsc_csv", "plot_fsc"]

FSC_COLUMNS = ["shell", "frequency_per_angstrom", "resolution_angstrom", "fsc"]


def fsc_curve(map_a, map_b, pixel_size_angstrom: float) -> tuple[np.ndarray, np.ndarray]:
    """FSC of two cubic maps ``[z, y, x]`` (numpy or torch, same shape ``(M, M, M)``).

    Returns:
        ``frequency_per_angstrom (M//2+1,)`` and ``fsc (M//2+1,)`` as float64 arrays.
    """
    a = torch.as_tensor(np.asarray(map_a) if not torch.is_tensor(map_a) else map_a).detach().to(torch.float32).cpu()
    b = torch.as_tensor(np.asarray(map_b) if not torch.is_tensor(map_b) else map_b).detach().to(torch.float32).cpu()
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"fsc_curve needs two 3D maps of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    values = _tfsc(a, b).double().numpy()
    freq = np.fft.rfftfreq(min(a.shape)) / float(pixel_size_angstrom)
    return freq[: len(values)], values


def resolution_at_threshold(frequency_per_angstrom, fsc, threshold: float = 0.5) -> float:
    """Resolution (Å) where the FSC first falls below ``threshold``.

    Scans shells from 1 (shell 0 is the mean and says nothing about
    resolution); linear interpolation in frequency between the last shell at or
    above the threshold and the first one below.  If shell 1 is already below,
    returns ``1 / frequency[1]`` (the coarsest measurable value); if the curve
    never falls below, returns the Nyquist resolution ``1 / frequency[-1]``
    (the true value is at least that good).
    """
    f = np.asarray(frequency_per_angstrom, dtype=np.float64)
    c = np.asarray(fsc, dtype=np.float64)
    if len(f) < 2 or len(f) != len(c):
        raise ValueError("resolution_at_threshold needs matching frequency and FSC arrays of length >= 2")
    below = np.nonzero(c[1:] < threshold)[0]
    if len(below) == 0:
        return float(1.0 / f[-1])
    i = int(below[0]) + 1
    if i == 1:
        return float(1.0 / f[1])
    c0, c1 = c[i - 1], c[i]
    t = (c0 - threshold) / (c0 - c1) if c0 != c1 else 0.0
    k = f[i - 1] + t * (f[i] - f[i - 1])
    return float(1.0 / k)


def write_fsc_csv(path: str | os.PathLike, frequency_per_angstrom, fsc) -> None:
    """Write the curve atomically with columns :data:`FSC_COLUMNS`."""
    f = np.asarray(frequency_per_angstrom, dtype=np.float64)
    with np.errstate(divide="ignore"):
        res = np.where(f > 0, 1.0 / np.where(f > 0, f, 1.0), np.inf)
    df = pd.DataFrame({"shell": np.arange(len(f)), "frequency_per_angstrom": f, "resolution_angstrom": res,
                       "fsc": np.asarray(fsc, dtype=np.float64)})
    with atomic_write_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")


def read_fsc_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(frequency_per_angstrom, fsc)`` from a CSV written by :func:`write_fsc_csv`."""
    df = pd.read_csv(path)
    return df["frequency_per_angstrom"].to_numpy(), df["fsc"].to_numpy()


def plot_fsc(path: str | os.PathLike, frequency_per_angstrom, fsc, threshold: float = 0.5,
             title: str = "GMM map vs consensus map", target_resolution_angstrom: float | None = None) -> None:
    """Save a PNG of the curve with the threshold line, the resolution where it is crossed and,
    if given, the target resolution (e.g. the refinement limit) as a grey band edge."""
    from matplotlib.figure import Figure  # no pyplot: leaves a notebook's backend alone

    f = np.asarray(frequency_per_angstrom)
    c = np.asarray(fsc)
    res = resolution_at_threshold(f, c, threshold)
    fig = Figure(figsize=(5.5, 3.8), dpi=120)
    ax = fig.add_subplot()
    ax.plot(f, c, color="C0", lw=1.8, label="FSC")
    ax.axhline(threshold, color="0.5", lw=1, ls="--", label=f"FSC = {threshold:g}")
    if target_resolution_angstrom:
        ax.axvspan(0, 1.0 / target_resolution_angstrom, color="0.9", zorder=0,
                   label=f"fitted (≤ 1/{target_resolution_angstrom:g} Å)")
    if math.isfinite(res):
        ax.axvline(1.0 / res, color="C3", lw=1, ls=":", label=f"{res:.2f} Å")
    ax.set_xlabel("spatial frequency (1/Å)")
    ax.set_ylabel("FSC")
    ax.set_ylim(min(-0.05, float(np.nanmin(c)) - 0.05), 1.05)
    ax.set_xlim(0, float(f[-1]))
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png")
