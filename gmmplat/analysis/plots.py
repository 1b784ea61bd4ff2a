"""PNG figures for the command line (matplotlib, Agg backend), written atomically.

Each function draws on a new figure, saves it to ``path`` and closes it; it also
returns nothing, so the CLI never keeps figures alive.  Notebooks use
``gmmplat.viewers`` for interactive versions.
"""
from __future__ import annotations

import os

import numpy as np

from ..io.atomic import atomic_write_path


def _figure(ncols: int = 1, width: float = 4.5, height: float = 4.0):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def _save(fig, path: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_write_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def latent_scatter_png(
    path: str | os.PathLike,
    scores: np.ndarray,
    values: np.ndarray | None = None,
    value_label: str = "",
    axis_labels: tuple[str, str] = ("PC 1", "PC 2"),
    trajectory: np.ndarray | None = None,
) -> None:
    """Scatter of 2D latent coordinates ``(rows, 2)`` coloured by per-row ``values (rows,)``.

    ``trajectory (n, 2)``, if given, is drawn on top as a line with frame markers.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.shape[1] == 1:
        s = np.concatenate([s, np.zeros_like(s)], axis=1)
    fig, (ax,) = _figure()
    colour = {} if values is None else {"c": np.asarray(values, dtype=np.float64), "cmap": "viridis"}
    sc = ax.scatter(s[:, 0], s[:, 1], s=4, alpha=0.6, linewidths=0, **colour)
    if values is not None:
        fig.colorbar(sc, ax=ax, label=value_label)
    if trajectory is not None:
        t = np.asarray(trajectory, dtype=np.float64)
        ax.plot(t[:, 0], t[:, 1], "-o", color="crimson", ms=3, lw=1)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    _save(fig, path)


def pc_histograms_png(path: str | os.PathLike, scores: np.ndarray, frame_scores: np.ndarray | None = None,
                      bins: int = 60) -> None:
    """Histogram of each PC score ``(rows, k)``; ``frame_scores (k, n)`` marked as ticks."""
    s = np.asarray(scores, dtype=np.float64)
    k = s.shape[1]
    fig, axes = _figure(ncols=k, width=3.5, height=3.0)
    for i, ax in enumerate(axes):
        ax.hist(s[:, i], bins=bins, color="steelblue")
        if frame_scores is not None and i < len(frame_scores):
            for v in frame_scores[i]:
                ax.axvline(v, color="crimson", lw=0.6, alpha=0.7)
        ax.set_xlabel(f"PC {i + 1} score")
        ax.set_ylabel("particles")
    _save(fig, path)


def displacement_histogram_png(path: str | os.PathLike, displacement_angstrom: np.ndarray, title: str = "",
                               bins: int = 50) -> None:
    """Histogram of per-atom displacement (Å) between the first and last trajectory frames."""
    d = np.asarray(displacement_angstrom, dtype=np.float64)
    fig, (ax,) = _figure(height=3.2)
    ax.hist(d, bins=bins, color="darkorange")
    ax.set_xlabel("per-atom displacement, first to last frame (Å)")
    ax.set_ylabel("atoms")
    if title:
        ax.set_title(title)
    _save(fig, path)


def per_residue_png(path: str | os.PathLike, table, title: str = "") -> None:
    """Per-residue displacement (Å) from :func:`gmmplat.analysis.morph.per_residue_displacement`, one line per chain."""
    fig, (ax,) = _figure(width=7.0, height=3.2)
    for chain, part in table.groupby("chain_id", sort=False):
        ax.plot(part["residue_number"], part["mean_displacement_angstrom"], lw=1, label=f"chain {chain}")
    ax.set_xlabel("residue number")
    ax.set_ylabel("mean displacement (Å)")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    _save(fig, path)


def rigid_motion_png(path: str | os.PathLike, table, title: str = "") -> None:
    """Rotation angle (degrees) per trajectory frame from :func:`gmmplat.analysis.rigid_report.rigid_motion`."""
    fig, (ax,) = _figure(height=3.2)
    ax.plot(table["frame"], table["angle_deg"], "-o", ms=3)
    ax.set_xlabel("frame")
    ax.set_ylabel("domain rotation (degrees)")
    if title:
        ax.set_title(title)
    _save(fig, path)
