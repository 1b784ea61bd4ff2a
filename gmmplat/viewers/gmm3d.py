"""3D views of a GMM (plotly): Gaussians as markers sized by σ, bonds, masks.

Coordinates are the GMM's own (Å from the box centre, x, y, z).  The first trace of a
:func:`gmm_figure` is always the Gaussians (named ``"gaussians"``), followed by
``"bonds"`` when drawn and the overlay; :func:`update_gmm_figure` moves them in place.

The figures are static ``go.Figure`` objects by default (drawn by the plotly.js that
:func:`gmmplat.viewers.setup_notebook` embeds: they show in JupyterLab, Voila and
exported HTML, offline); ``live=True`` gives a :class:`gmmplat.viewers.live.LiveFigure`
for in-place updates (see that module for why not plotly's ``FigureWidget``).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from ..model.gmm import AMPLITUDE, GMM, WIDTH, XYZ

# marker diameter in screen pixels per Å of σ (plotly 3D markers are sized in px)
SIZE_PX_PER_SIGMA_ANGSTROM = 4.0
SIZE_PX_RANGE = (3.0, 30.0)
MASK_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")
REST_COLOUR = "#b0b0b0"
ORIGIN_COLOURS = {0: ("model", "#1f77b4"), 1: ("pseudoatom", "#ff7f0e")}
COLOUR_BY = ("amplitude", "sigma", "origin", "domain", "displacement")


def as_params(gmm_or_params: Any) -> np.ndarray:
    """``(N, 5)`` float64 numpy array from a :class:`GMM`, a torch tensor or an array."""
    p = gmm_or_params.params if isinstance(gmm_or_params, GMM) else gmm_or_params
    if hasattr(p, "detach"):
        p = p.detach().cpu().numpy()
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 5:
        raise ConfigError(f"GMM parameters must be (N, 5) [x, y, z, amplitude, sigma], got shape {p.shape}")
    return p


def marker_sizes(sigma_angstrom: np.ndarray) -> np.ndarray:
    """Marker diameters (px) for σ (Å): proportional, clipped to :data:`SIZE_PX_RANGE`."""
    return np.clip(SIZE_PX_PER_SIGMA_ANGSTROM * np.asarray(sigma_angstrom), *SIZE_PX_RANGE)


def _bond_lines(xyz: np.ndarray, bonds: np.ndarray) -> tuple[list, list, list]:
    """Line coordinates with ``None`` gaps between bonds (plotly breaks lines at None)."""
    out: tuple[list, list, list] = ([], [], [])
    for i, j in np.asarray(bonds, dtype=np.int64).reshape(-1, 2):
        for axis in range(3):
            out[axis].extend((float(xyz[i, axis]), float(xyz[j, axis]), None))
    return out


def _masks_of(gmm: GMM | None, n: int) -> dict[str, np.ndarray]:
    if gmm is None:
        return {}
    return {k: v for k, v in gmm.masks().items() if v.shape == (n,)}


def _colour_spec(params: np.ndarray, color_by: Any, gmm: GMM | None) -> dict:
    """Marker colour settings (plotly ``marker`` dict entries) for the Gaussians."""
    n = params.shape[0]
    if not isinstance(color_by, str):
        values = np.asarray(color_by, dtype=np.float64).reshape(-1)
        if values.shape != (n,):
            raise ConfigError(f"color_by array has {values.size} values for {n} Gaussians")
        return dict(color=values, colorscale="Viridis", showscale=True, colorbar=dict(thickness=12))
    if color_by == "amplitude":
        return dict(color=params[:, AMPLITUDE], colorscale="Viridis", showscale=True, colorbar=dict(title="amplitude", thickness=12))
    if color_by == "sigma":
        return dict(color=params[:, WIDTH], colorscale="Viridis", showscale=True, colorbar=dict(title="σ (Å)", thickness=12))
    if color_by == "origin":
        if gmm is None or "origin" not in gmm.extras:
            raise ConfigError("color_by='origin' needs a GMM with the extra 'origin' (0 model, 1 pseudoatom)")
        origin = np.asarray(gmm.extras["origin"]).astype(int).reshape(-1)
        return dict(color=[ORIGIN_COLOURS.get(int(o), ("other", REST_COLOUR))[1] for o in origin])
    if color_by == "domain":
        masks = _masks_of(gmm, n)
        if not masks:
            raise ConfigError("color_by='domain' needs a GMM with at least one 'mask__<name>' extra")
        colours = np.full(n, REST_COLOUR, dtype=object)
        for k, (name, m) in enumerate(sorted(masks.items())):
            colours[m & (colours == REST_COLOUR)] = MASK_COLOURS[k % len(MASK_COLOURS)]
        return dict(color=list(colours))
    if color_by == "displacement":
        if gmm is None or gmm.n != n:
            raise ConfigError("color_by='displacement' needs gmm= (the neutral GMM) with as many Gaussians as the parameters")
        d = np.linalg.norm(params[:, XYZ] - as_params(gmm)[:, XYZ], axis=1)
        return dict(color=d, colorscale="Plasma", cmin=0.0, showscale=True, colorbar=dict(title="shift (Å)", thickness=12))
    raise ConfigError(f"unknown color_by {color_by!r}; choose one of {', '.join(COLOUR_BY)} or give an array (N,)")


def _hover(params: np.ndarray, gmm: GMM | None) -> list[str]:
    masks = _masks_of(gmm, params.shape[0])
    text = []
    for i, (a, s) in enumerate(params[:, 3:5]):
        names = [name for name, m in masks.items() if m[i]]
        text.append(f"#{i} a={a:.3g} σ={s:.2f} Å" + (f" [{', '.join(names)}]" if names else ""))
    return text


def _new_figure(title: str | None):
    """A static ``go.Figure`` with the 3D layout (:func:`finish` makes it live on request)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        title=title, height=460, margin=dict(l=0, r=0, t=40 if title else 10, b=0),
        scene=dict(aspectmode="data", xaxis_title="x (Å)", yaxis_title="y (Å)", zaxis_title="z (Å)"),
        legend=dict(itemsizing="constant"), uirevision="gmmplat",
    )
    return fig


def finish(fig, dom_class: str, live: bool):
    """The static ``go.Figure``, or with ``live`` a :class:`LiveFigure` tagged with a CSS class."""
    if not live:
        return fig
    from .live import LiveFigure

    return LiveFigure(fig, dom_class)


def gmm_figure(
    gmm_or_params: Any,
    color_by: str | np.ndarray = "amplitude",
    show_bonds: bool = True,
    overlay_params: Any = None,
    gmm: GMM | None = None,
    title: str | None = None,
    overlay_name: str = "overlay",
    live: bool = False,
):
    """3D scatter of a GMM's Gaussians -> ``plotly.graph_objects.Figure`` (``live``: :class:`LiveFigure`).

    Args:
        gmm_or_params: a :class:`GMM` or parameters ``(N, 5)`` (x, y, z Å, amplitude, σ Å),
            e.g. one decoded conformation; then pass the neutral GMM as ``gmm`` for its
            extras (bonds, masks, origin) and for ``color_by="displacement"``.
        color_by: ``"amplitude"``, ``"sigma"``, ``"origin"`` (model / pseudoatom),
            ``"domain"`` (``mask__<name>`` extras), ``"displacement"`` (Å from ``gmm``)
            or one value per Gaussian ``(N,)``.
        show_bonds: draw the extra ``bonds (E, 2)`` as lines when present.
        overlay_params: another GMM ``(M, 5)`` drawn translucent on top (e.g. the neutral
            GMM or ``extras["small_params"]``).
        live: return a :class:`gmmplat.viewers.live.LiveFigure` that :func:`update_gmm_figure`
            changes in place (what :func:`gmmplat.viewers.latent_explorer` uses).
    """
    params = as_params(gmm_or_params)
    if gmm is None and isinstance(gmm_or_params, GMM):
        gmm = gmm_or_params
    import plotly.graph_objects as go

    fig = _new_figure(title)
    marker = dict(size=marker_sizes(params[:, WIDTH]), opacity=0.9, line=dict(width=0))
    marker.update(_colour_spec(params, color_by, gmm))
    fig.add_trace(go.Scatter3d(x=params[:, 0], y=params[:, 1], z=params[:, 2], mode="markers", name="gaussians",
                               marker=marker, text=_hover(params, gmm), hoverinfo="text", showlegend=False))
    bonds = None if gmm is None else gmm.extras.get("bonds")
    if show_bonds and bonds is not None and len(bonds):
        bx, by, bz = _bond_lines(params, bonds)
        fig.add_trace(go.Scatter3d(x=bx, y=by, z=bz, mode="lines", name="bonds", hoverinfo="skip",
                                   line=dict(color="rgba(90,90,90,0.6)", width=2), showlegend=False))
    if overlay_params is not None:
        ov = as_params(overlay_params)
        fig.add_trace(go.Scatter3d(x=ov[:, 0], y=ov[:, 1], z=ov[:, 2], mode="markers", name=overlay_name,
                                   marker=dict(size=marker_sizes(ov[:, WIDTH]), color="rgba(220,40,60,0.35)", line=dict(width=0)),
                                   hoverinfo="name"))
    return finish(fig, "gmmplat-gmm", live)


def update_gmm_figure(fig, params: Any, gmm: GMM | None = None, color_by: str | np.ndarray | None = None) -> None:
    """Move the Gaussians (and bonds) of a :func:`gmm_figure` to ``params (N, 5)`` in place.

    Works on a :class:`LiveFigure` (one message to the front end, camera kept) and on a
    plain ``go.Figure`` / ``FigureWidget``.  ``color_by`` recolours as well (e.g.
    ``"displacement"`` against ``gmm``).
    """
    p = as_params(params)
    names = [t.name for t in fig.data]
    updates = {names.index("gaussians"): {"x": p[:, 0], "y": p[:, 1], "z": p[:, 2], "marker.size": marker_sizes(p[:, WIDTH])}}
    if color_by is not None:
        updates[names.index("gaussians")]["marker.color"] = _colour_spec(p, color_by, gmm)["color"]
    if "bonds" in names and gmm is not None and "bonds" in gmm.extras:
        bx, by, bz = _bond_lines(p, gmm.extras["bonds"])
        updates[names.index("bonds")] = {"x": bx, "y": by, "z": bz}
    from .live import LiveFigure

    with fig.batch_update():
        for trace, props in updates.items():
            if isinstance(fig, LiveFigure):
                fig.restyle(trace, props)
            else:
                for key, value in props.items():
                    fig.data[trace][key] = value


def mask_figure(gmm: GMM, masks: Mapping[str, np.ndarray] | None = None, title: str | None = None,
                show_bonds: bool = False, live: bool = False):
    """Each mask in its own colour and legend entry (click to hide), the other Gaussians grey.

    ``masks``: name -> bool ``(N,)``; default the GMM's ``mask__<name>`` extras.
    """
    import plotly.graph_objects as go

    params = as_params(gmm)
    n = params.shape[0]
    masks = dict(_masks_of(gmm, n) if masks is None else masks)
    if not masks:
        raise ConfigError("mask_figure needs masks: the GMM has no 'mask__<name>' extra and none were given")
    fig = _new_figure(title)
    covered = np.zeros(n, dtype=bool)
    hover = np.asarray(_hover(params, gmm), dtype=object)
    for k, (name, m) in enumerate(masks.items()):
        m = np.asarray(m, dtype=bool).reshape(-1)
        if m.shape != (n,):
            raise ConfigError(f"mask {name!r} has {m.size} entries for {n} Gaussians")
        covered |= m
        fig.add_trace(go.Scatter3d(x=params[m, 0], y=params[m, 1], z=params[m, 2], mode="markers",
                                   name=f"{name} ({int(m.sum())})", text=list(hover[m]), hoverinfo="text",
                                   marker=dict(size=marker_sizes(params[m, WIDTH]), color=MASK_COLOURS[k % len(MASK_COLOURS)],
                                               opacity=0.9, line=dict(width=0))))
    rest = ~covered
    fig.add_trace(go.Scatter3d(x=params[rest, 0], y=params[rest, 1], z=params[rest, 2], mode="markers",
                               name=f"rest ({int(rest.sum())})", text=list(hover[rest]), hoverinfo="text",
                               marker=dict(size=marker_sizes(params[rest, WIDTH]), color=REST_COLOUR, opacity=0.5,
                                           line=dict(width=0))))
    bonds = gmm.extras.get("bonds")
    if show_bonds and bonds is not None and len(bonds):
        bx, by, bz = _bond_lines(params, bonds)
        fig.add_trace(go.Scatter3d(x=bx, y=by, z=bz, mode="lines", name="bonds", hoverinfo="skip",
                                   line=dict(color="rgba(90,90,90,0.5)", width=2)))
    return finish(fig, "gmmplat-masks", live)
