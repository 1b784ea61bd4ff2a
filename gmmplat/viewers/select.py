"""Box/lasso selection on the latent scatter, written as a particle subset (STAR or .cs).

:func:`latent_selector` shows :func:`gmmplat.viewers.latent_figure` as a
:class:`~gmmplat.viewers.LiveFigure` in lasso mode; each selection is turned into
particles and written by :func:`gmmplat.analysis.select.write_selection`, the function
behind ``gmmplat select`` (same file, same symmetry-copy rule).
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["latent_selector"]


def latent_selector(latent: np.ndarray, particles, out_path: str | os.PathLike, color=None, rule: str = "majority",
                    title: str | None = None, color_label: str = ""):
    """Latent scatter whose selections write ``out_path``; returns an ipywidgets ``VBox``.

    Args:
        latent: ``(n, d)`` or ``(n, K, d)``; particles: the run's
            :class:`~gmmplat.io.star.ParticleStar` (``gmmplat.analysis.runs.run_particles``).
        out_path: ``.star`` or ``.cs`` subset, rewritten at each selection.
        rule: how symmetry copies combine (``any``/``majority``/``all``).

    The widget has attributes ``figure`` (the LiveFigure), ``status`` (a Label with the
    last result) and ``select(rows)`` (apply a selection of scatter rows from code).
    """
    import ipywidgets as widgets

    from ..analysis.select import write_selection
    from .latent import latent_figure
    from .live import LiveFigure

    fig = latent_figure(latent, color=color, title=title or "select particles: box or lasso", color_label=color_label)
    fig.update_layout(dragmode="lasso")
    live = LiveFigure(fig, dom_class="gmmplat-latent-select")
    status = widgets.Label("draw a box or lasso around latent points to write their particles")
    n_rows = int(np.prod(np.asarray(latent).shape[:-1]))

    def select(rows) -> None:
        mask = np.zeros(n_rows, dtype=bool)
        mask[np.asarray(rows, dtype=np.int64)] = True
        try:
            sel = write_selection(particles, latent, mask, out_path, rule=rule)
        except Exception as exc:  # shown to the user, the widget stays alive
            status.value = f"not written: {exc}"
            return
        status.value = f"{sel.describe()} written to {out_path}"

    live.observe(lambda change: change["new"] and select(change["new"]), names="selected")
    box = widgets.VBox([live, status])
    box.figure, box.status, box.select = live, status, select
    return box
