"""Figure of the data check: a few low-passed particle images beside their predicted projections."""
from __future__ import annotations

import textwrap
from pathlib import Path

from .conventions import ROW_LABELS

ROW_TITLES = {"image": "image (low-pass)", "stated": "stated conventions", "mistake": "best mistake"}


def examples_figure(result):
    """Matplotlib Figure: one row per entry of ``result.examples``, one column per particle."""
    from matplotlib.figure import Figure

    keys = [k for k in ("image", "stated", "mistake") if k in result.examples]
    k = result.examples["image"].shape[0]
    fig = Figure(figsize=(1.6 * k + 0.4, 1.7 * len(keys) + 0.5), layout="constrained")
    axes = fig.subplots(len(keys), k, squeeze=False)
    for i, key in enumerate(keys):
        for j in range(k):
            ax = axes[i, j]
            ax.imshow(result.examples[key][j], cmap="gray", origin="lower")  # y up, x right
            ax.set_xticks([])
            ax.set_yticks([])
        title = ROW_TITLES[key] if key != "mistake" else " +\n".join(ROW_LABELS[m] for m in result.mistake)
        axes[i, 0].set_ylabel(title, fontsize=8)
    verdict = "PASS" if result.passed else "FAIL"
    fig.suptitle(textwrap.fill(f"{verdict}: {result.verdict}", width=int(22 * k)), fontsize=8)
    return fig


def write_png(result, path) -> None:
    """Write the figure as PNG to ``path`` (as it is: see :func:`save_figure`)."""
    examples_figure(result).savefig(path, dpi=110, format="png")


def save_figure(result, path) -> Path:
    """Write the figure as PNG, atomically."""
    from ..io.atomic import atomic_write_path

    path = Path(path)
    with atomic_write_path(path) as tmp:
        write_png(result, tmp)
    return path
