"""Latent space: a scatter of the particles' latent points (PCA) and a slider explorer.

The explorer follows the paper's trajectories: frames spread along one principal
component of the latent space (``gmmplat.analysis.latent.pc_trajectories``), each
decoded into GMM parameters; moving the slider moves the GMM figure in place
(one ``batch_update``), marks the frame on the latent scatter and, when given,
steps an nglview trajectory of morphed models to the same frame.
"""
from __future__ import annotations

from typing import Any, Callable

import ipywidgets as widgets
import numpy as np

from ..analysis.latent import LatentPCA, fit_pca, flatten_latent, pc_trajectories
from ..errors import ConfigError
from ..model.gmm import GMM
from .gmm3d import finish, gmm_figure, update_gmm_figure

JITTER_SEED = 0


class LatentExplorer(widgets.VBox):
    """The explorer's box; its text form starts ``LatentExplorer(`` (counted by the browser tests)."""

    def set_frame(self, k: int) -> None:
        """Move to frame ``k`` as the slider does."""
        self.slider.value = int(k)


def _axes(rows: np.ndarray, pca: bool) -> tuple[LatentPCA | None, Callable[[np.ndarray], np.ndarray], tuple[str, str]]:
    """The 2D plane shown: ``(pca or None, project (m, d) -> (m, 2), axis titles)``."""
    d = rows.shape[1]
    if d == 1:
        return None, lambda z: np.asarray(z, dtype=np.float64)[:, :1], ("z", "")
    if pca:
        fit = fit_pca(rows, n_components=2)
        r = fit.explained_variance_ratio
        return fit, lambda z: fit.transform(z)[:, :2], (f"PC1 ({100 * r[0]:.0f} %)", f"PC2 ({100 * r[1]:.0f} %)")
    return None, lambda z: np.asarray(z, dtype=np.float64)[:, :2], ("z1", "z2")


def _plane(points2: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """x, y of ``(m, 1 or 2)`` points; a 1D latent gets a seeded jitter in y (strip plot)."""
    if points2.shape[1] == 2:
        return points2[:, 0], points2[:, 1]
    rng = np.random.default_rng(JITTER_SEED)
    return points2[:, 0], rng.uniform(-1, 1, n)


def latent_figure(latent: np.ndarray, color: np.ndarray | None = None, pca: bool = True, title: str | None = None,
                  trajectory: np.ndarray | None = None, color_label: str = "", live: bool = False):
    """Scatter of latent points -> ``go.Figure`` (PC1 vs PC2, or z1 vs z2 with ``pca=False``).

    Args:
        latent: ``(P, d)`` (or ``(P, K, d)`` symmetry-expanded) latent points.
        color: ``(P,)`` values per particle (e.g. the simulation's true ``t``), or None.
        trajectory: ``(F, d)`` latent points drawn as a line with a highlighted current frame
            (traces ``"trajectory"`` and ``"current"``).
        live: a :class:`gmmplat.viewers.live.LiveFigure` instead (updated in place).
        A 1D latent is drawn as a strip (z against a fixed random jitter).
    """
    import plotly.graph_objects as go

    if color is None:
        rows, values = flatten_latent(latent), None
    else:
        rows, values = flatten_latent(latent, np.asarray(color, dtype=np.float64).reshape(-1))
    _, project, (xt, yt) = _axes(rows, pca)
    x, y = _plane(project(rows), rows.shape[0])
    marker: dict[str, Any] = dict(size=4, opacity=0.6, line=dict(width=0))
    if values is not None:
        marker.update(color=values, colorscale="Viridis", showscale=True, colorbar=dict(title=color_label, thickness=12))
    scatter = go.Scattergl if rows.shape[0] > 20000 else go.Scatter
    fig = go.Figure()
    fig.add_trace(scatter(x=x, y=y, mode="markers", name="particles", marker=marker, hoverinfo="skip"))
    if trajectory is not None:
        t = np.asarray(trajectory, dtype=np.float64)
        tx, ty = (t[:, 0], np.zeros(len(t))) if rows.shape[1] == 1 else _plane(project(t), len(t))
        fig.add_trace(go.Scatter(x=tx, y=ty, mode="lines+markers", name="trajectory",
                                 line=dict(color="crimson", width=2), marker=dict(size=5, color="crimson")))
        mid = len(t) // 2
        fig.add_trace(go.Scatter(x=[tx[mid]], y=[ty[mid]], mode="markers", name="current",
                                 marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(color="black", width=3))))
    fig.update_layout(title=title, height=420, margin=dict(l=50, r=10, t=40 if title else 10, b=40),
                      xaxis_title=xt, yaxis_title=yt, showlegend=False)
    if rows.shape[1] == 1:
        fig.update_yaxes(showticklabels=False)
    return finish(fig, "gmmplat-latent", live)


def latent_trajectory(latent: np.ndarray, n_frames: int = 11, component: int = 1,
                      low_percentile: float = 1.0, high_percentile: float = 99.0) -> np.ndarray:
    """Latent points ``(n_frames, d)`` along the 1-based principal ``component``."""
    rows = flatten_latent(latent)
    if rows.shape[1] == 1:
        lo, hi = np.percentile(rows[:, 0], [low_percentile, high_percentile])
        return np.linspace(lo, hi, int(n_frames))[:, None]
    traj = pc_trajectories(fit_pca(rows), n_frames=n_frames, pcs=[component],
                           low_percentile=low_percentile, high_percentile=high_percentile)
    return traj.z[0]


def decode_frames(decode_fn: Callable, z: np.ndarray) -> np.ndarray:
    """``decode_fn`` on ``z (F, d)`` (float32 tensor, no grad) -> params ``(F, N, 5)`` float64."""
    import torch

    with torch.no_grad():
        out = decode_fn(torch.as_tensor(np.asarray(z), dtype=torch.float32))
    if hasattr(out, "detach"):
        out = out.detach().cpu().numpy()
    out = np.asarray(out, dtype=np.float64)
    if out.ndim != 3 or out.shape[0] != len(z) or out.shape[2] != 5:
        raise ConfigError(f"decode_fn must return parameters (F={len(z)}, N, 5) for F latent points, got shape {out.shape}")
    return out


def latent_explorer(latent: np.ndarray, decode_fn: Callable, gmm: GMM, n_frames: int = 11, color: np.ndarray | None = None,
                    component: int = 1, model_view: Any = None, on_frame: Callable | None = None,
                    color_by: str | np.ndarray = "displacement", title: str | None = None,
                    trajectory: np.ndarray | None = None):
    """A slider along a latent principal component that morphs a GMM figure in place.

    Args:
        latent: ``(P, d)`` latent points of the particles; color: ``(P,)`` values for the scatter.
        decode_fn: ``decode_fn(z)`` with ``z`` a float32 tensor ``(F, d)`` -> parameters ``(F, N, 5)``
            (tensor or array), e.g. neutral + the decoders' offsets.  Called once for all frames.
        gmm: the neutral GMM (extras: bonds, masks; reference for ``color_by="displacement"``).
        n_frames: frames spread over the 1st–99th percentile of the PC score.
        model_view: an ``NGLWidget`` (:func:`gmmplat.viewers.model_view`) holding ``n_frames``
            morphed models of the same trajectory; its ``frame`` follows the slider.
        on_frame: called as ``on_frame(index, z (d,), params (N, 5))`` after each move.
        trajectory: explicit latent points ``(F, d)`` to visit instead of the PC trajectory
            (e.g. the simulation's true ``t`` of each ``truth_frames.pdb`` model).

    Returns:
        a ``LatentExplorer`` (an ``ipywidgets.VBox``) with attributes ``slider``,
        ``latent_figure``, ``gmm_figure`` (:class:`LiveFigure`), ``z (F, d)``, ``frames (F, N, 5)``;
        ``set_frame(k)`` moves as the slider does.
    """
    if trajectory is None:
        z, label = latent_trajectory(latent, n_frames=n_frames, component=component), f"PC{component} frame"
    else:
        z, label = np.asarray(trajectory, dtype=np.float64).reshape(len(trajectory), -1), "frame"
        n_frames = len(z)
    frames = decode_frames(decode_fn, z)
    if frames.shape[1] != gmm.n:
        raise ConfigError(f"decode_fn gives {frames.shape[1]} Gaussians but the neutral GMM has {gmm.n}")
    if model_view is not None and int(getattr(model_view, "max_frame", n_frames - 1)) + 1 != n_frames:
        raise ConfigError(f"model_view holds {int(model_view.max_frame) + 1} frames, the trajectory {n_frames}")
    from . import ensure_plotly_js
    from .live import LiveFigure

    ensure_plotly_js()
    mid = n_frames // 2
    lat_static = latent_figure(latent, color=color, trajectory=z, title="latent space")
    lat_static.update_layout(width=430)
    lat_fig = LiveFigure(lat_static, "gmmplat-latent")
    gmm_static = gmm_figure(frames[mid], color_by=color_by, gmm=gmm, title=title or f"{label} {mid}")
    gmm_static.update_layout(width=560)
    gmm_fig = LiveFigure(gmm_static, "gmmplat-gmm")
    slider = widgets.IntSlider(value=mid, min=0, max=n_frames - 1, step=1, description=label,
                               continuous_update=True, style={"description_width": "initial"},
                               layout=widgets.Layout(width="420px"))
    slider.add_class("gmmplat-latent-slider")
    play = widgets.Play(value=mid, min=0, max=n_frames - 1, step=1, interval=400, description="play")
    widgets.jslink((play, "value"), (slider, "value"))
    names = [t.name for t in lat_fig.data]
    current, line = names.index("current"), lat_fig.data[names.index("trajectory")]
    cx, cy = np.asarray(line.x, dtype=np.float64), np.asarray(line.y, dtype=np.float64)

    def set_frame(k: int) -> None:
        k = int(k)
        with gmm_fig.batch_update():
            update_gmm_figure(gmm_fig, frames[k], gmm=gmm, color_by=color_by if isinstance(color_by, str) else None)
            gmm_fig.relayout({"title.text": title or f"{label} {k}"})
        lat_fig.restyle(current, {"x": [float(cx[k])], "y": [float(cy[k])]})
        if model_view is not None:
            if model_view.frame == k:  # its own player may have moved there: send frame k anyway
                model_view._set_coordinates(k)
            model_view.frame = k
        if on_frame is not None:
            on_frame(k, z[k], frames[k])

    slider.observe(lambda change: set_frame(change["new"]), names="value")
    children = [widgets.HBox([play, slider]), widgets.HBox([lat_fig, gmm_fig])]
    if model_view is not None:
        children.append(model_view)
    box = LatentExplorer(children)
    box.add_class("gmmplat-latent-explorer")
    box.slider, box.latent_figure, box.gmm_figure, box.z, box.frames = slider, lat_fig, gmm_fig, z, frames
    return box
