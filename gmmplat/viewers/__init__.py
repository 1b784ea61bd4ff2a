"""Interactive viewers for notebooks: 3D GMMs and masks (plotly), latent spaces with a
slider explorer (plotly + ipywidgets), atomic models and trajectories (nglview), and
2D figures (losses, FSC, histograms, particle images, map slices).

Every viewer is built without a browser (safe under papermill).  Figures are static
plotly ``go.Figure`` objects drawn by the plotly.js that :func:`setup_notebook` embeds
once per notebook (offline, and kept in executed / exported notebooks); the explorer's
figures are :class:`LiveFigure` widgets updated in place from a live kernel (JupyterLab,
Voila), the model view an ``NGLWidget``.  Call :func:`setup_notebook` once at the top.

Each viewer's DOM element carries a CSS class (``gmmplat-gmm``, ``gmmplat-masks``,
``gmmplat-latent``, ``gmmplat-model``, ``gmmplat-latent-explorer``,
``gmmplat-latent-slider``, ``gmmplat-latent-select``) so the browser tests can name the viewer that failed.
"""
from __future__ import annotations

import re

from .gmm3d import gmm_figure, mask_figure, update_gmm_figure
from .live import LiveFigure
from .latent import LatentExplorer, latent_explorer, latent_figure, latent_trajectory
from .molecule import FramesTrajectory, model_view, ngl_selection
from .select import latent_selector
from .plots import fsc_figure, histogram_figure, image_grid_figure, loss_figure, map_slices_figure

__all__ = [
    "setup_notebook", "ensure_plotly_js", "LiveFigure",
    "gmm_figure", "mask_figure", "update_gmm_figure",
    "latent_figure", "latent_explorer", "latent_selector", "latent_trajectory", "LatentExplorer",
    "model_view", "FramesTrajectory", "ngl_selection",
    "loss_figure", "fsc_figure", "histogram_figure", "image_grid_figure", "map_slices_figure",
]


_PLOTLY_JS_EMBEDDED = False
_CDN_SCRIPT = re.compile(r'<script src="https?://[^"]*"></script>')


def _offline_notebook_renderer():
    """plotly's ``notebook`` renderer without the MathJax ``<script src=CDN>`` it adds to each figure."""
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineNotebookRenderer(NotebookRenderer):
        def to_mimebundle(self, fig_dict):
            bundle = super().to_mimebundle(fig_dict)
            bundle["text/html"] = _CDN_SCRIPT.sub("", bundle["text/html"])
            return bundle

    return OfflineNotebookRenderer(connected=False)


def setup_notebook() -> None:
    """Make plotly figures render offline in JupyterLab, Voila and exported HTML.

    Sets ``plotly.io.renderers.default = "notebook"``, which embeds plotly.js (about 5 MB)
    in this cell's output, once; every later figure is a small script drawing with it
    (papermill's default ``plotly_mimetype`` output is dropped by ``nbconvert --to html``;
    the CDN renderers need the network).  :class:`LiveFigure` draws with the same plotly.js.
    The ``notebook`` renderer is replaced by one that leaves out the MathJax script plotly
    links from a CDN in every figure (no figure here uses LaTeX; offline it only fails).
    """
    global _PLOTLY_JS_EMBEDDED
    import plotly.io as pio

    pio.renderers["notebook"] = _offline_notebook_renderer()
    pio.renderers.default = "notebook"  # activating the renderer displays plotly.js
    _PLOTLY_JS_EMBEDDED = True


def ensure_plotly_js() -> None:
    """:func:`setup_notebook` unless it already ran in this kernel."""
    if not _PLOTLY_JS_EMBEDDED:
        setup_notebook()
