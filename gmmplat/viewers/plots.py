"""2D figures for notebooks (plotly ``Figure``, static: they render offline wherever plotly.js
is embedded, see :func:`gmmplat.viewers.setup_notebook`): training losses, FSC curves,
histograms, particle image grids and map slices.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, InputError

FSC_THRESHOLDS = (0.5, 0.143)


def _layout(fig, title: str | None, height: int = 360):
    fig.update_layout(title=title, height=height, margin=dict(l=60, r=20, t=50 if title else 20, b=50),
                      template="plotly_white")
    return fig


def _read_csv(source: Any, default_name: str):
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if path.is_dir():
        path = path / default_name
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return pd.read_csv(path)
    except Exception as exc:  # pandas parser errors
        raise InputError(path, f"not a readable CSV ({type(exc).__name__}: {exc})") from None


def loss_figure(losses_csv: Any, title: str | None = "training losses", log_y: bool | None = None):
    """Loss curves per epoch from a run's ``losses.csv`` (path, run folder or DataFrame).

    Plots every ``*_loss`` column against ``global_epoch`` (or ``epoch``/``step``; else
    the row number); dashed lines mark the start of each training round.
    ``log_y`` defaults to True when all losses are positive.
    """
    import plotly.graph_objects as go

    df = _read_csv(losses_csv, "losses.csv")
    xcol = next((c for c in ("global_epoch", "epoch", "step", "iteration") if c in df.columns), None)
    x = df[xcol].to_numpy() if xcol else np.arange(len(df))
    ycols = [c for c in df.columns if c.endswith("_loss") or c == "loss"]
    if not ycols:
        ycols = [c for c in df.select_dtypes("number").columns if c != xcol]
    if not ycols or len(df) == 0:
        raise ConfigError("loss_figure: no loss columns (named '*_loss') or no rows in the table")
    fig = go.Figure()
    for c in ycols:
        fig.add_trace(go.Scatter(x=x, y=df[c], mode="lines+markers", name=c, marker=dict(size=4)))
    if {"round", "epoch"} <= set(df.columns) and xcol == "global_epoch":
        starts = df[(df["epoch"] == df["epoch"].min()) & (df["round"] > df["round"].min())]
        for _, row in starts.iterrows():
            fig.add_vline(x=row["global_epoch"] - 0.5, line_dash="dash", line_color="grey",
                          annotation_text=str(row.get("round_name", row["round"])), annotation_position="top left")
    values = df[ycols].to_numpy(dtype=np.float64)
    if log_y is None:
        log_y = bool(np.all(values[np.isfinite(values)] > 0))
    fig.update_yaxes(type="log" if log_y else "linear", title="loss")
    fig.update_xaxes(title=xcol or "row")
    return _layout(fig, title)


def _fsc_curves(source: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if isinstance(source, Mapping):
        return {str(k): next(iter(_fsc_curves(v).values())) for k, v in source.items()}
    if isinstance(source, tuple) and len(source) == 2:
        f, c = (np.asarray(a, dtype=np.float64).reshape(-1) for a in source)
        if f.shape != c.shape:
            raise ConfigError(f"fsc_figure: {f.size} frequencies for {c.size} FSC values")
        return {"FSC": (f, c)}
    df = _read_csv(source, "fsc.csv")
    if not {"frequency_per_angstrom", "fsc"} <= set(df.columns):
        raise InputError(source, "FSC table needs columns 'frequency_per_angstrom' and 'fsc' "
                                 "(gmmplat.physics.fsc.write_fsc_csv)")
    name = Path(source).stem if isinstance(source, (str, os.PathLike)) else "FSC"
    return {name: (df["frequency_per_angstrom"].to_numpy(np.float64), df["fsc"].to_numpy(np.float64))}


def fsc_figure(fsc_csv_or_arrays: Any, title: str | None = "Fourier shell correlation",
               thresholds: Sequence[float] = FSC_THRESHOLDS):
    """FSC curve(s) against spatial frequency (1/Å), with threshold lines and crossings.

    ``fsc_csv_or_arrays``: a CSV from :func:`gmmplat.physics.fsc.write_fsc_csv`, a pair
    ``(frequency_per_angstrom, fsc)``, or a dict label -> either of those.
    The legend gives each curve's resolution (Å) at the first threshold.
    """
    import plotly.graph_objects as go

    from ..physics.fsc import resolution_at_threshold

    fig = go.Figure()
    for label, (f, c) in _fsc_curves(fsc_csv_or_arrays).items():
        with np.errstate(divide="ignore"):
            res = np.where(f > 0, 1.0 / np.where(f > 0, f, 1.0), np.inf)
        name = label
        if thresholds and len(f) >= 2:
            name = f"{label} ({resolution_at_threshold(f, c, thresholds[0]):.1f} Å at {thresholds[0]:g})"
        fig.add_trace(go.Scatter(x=f, y=c, mode="lines", name=name, customdata=res,
                                 hovertemplate="%{customdata:.1f} Å: FSC %{y:.3f}<extra></extra>"))
    for t in thresholds:
        fig.add_hline(y=t, line_dash="dot", line_color="grey", annotation_text=f"{t:g}", annotation_position="right")
    fig.update_xaxes(title="spatial frequency (1/Å)")
    fig.update_yaxes(title="FSC", range=[-0.1, 1.05])
    return _layout(fig, title)


def histogram_figure(values: Any, bins: int = 50, title: str | None = None, xlabel: str = "",
                     labels: Sequence[str] | None = None, threshold: float | None = None,
                     threshold_label: str = "threshold"):
    """Histogram(s): ``values`` an array, a list of arrays (overlaid) or a dict label -> array;
    ``threshold``: a dashed vertical line there (e.g. the junk threshold of a fit-quality histogram)."""
    import plotly.graph_objects as go

    if isinstance(values, Mapping):
        series = {str(k): np.asarray(v, dtype=np.float64).reshape(-1) for k, v in values.items()}
    elif isinstance(values, (list, tuple)) and values and np.ndim(values[0]) > 0:
        names = labels or [f"set {i + 1}" for i in range(len(values))]
        series = {n: np.asarray(v, dtype=np.float64).reshape(-1) for n, v in zip(names, values)}
    else:
        series = {(labels or [""])[0]: np.asarray(values, dtype=np.float64).reshape(-1)}
    finite = np.concatenate([v[np.isfinite(v)] for v in series.values()])
    if finite.size == 0:
        raise ConfigError("histogram_figure: no finite values")
    lo, hi = float(finite.min()), float(finite.max())
    size = (hi - lo) / max(int(bins), 1) or 1.0
    fig = go.Figure()
    for name, v in series.items():
        fig.add_trace(go.Histogram(x=v[np.isfinite(v)], name=name, opacity=0.75 if len(series) > 1 else 1.0,
                                   xbins=dict(start=lo, end=hi + size, size=size)))
    fig.update_layout(barmode="overlay", showlegend=len(series) > 1)
    if threshold is not None and np.isfinite(threshold):
        fig.add_vline(x=float(threshold), line_dash="dash", line_color="black",
                      annotation_text=f"{threshold_label} {threshold:.3g}", annotation_position="top")
    fig.update_xaxes(title=xlabel)
    fig.update_yaxes(title="count")
    return _layout(fig, title)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """Per-image contrast: 1st–99th percentile -> 0–255."""
    lo, hi = np.percentile(img, [1, 99])
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.clip((img - lo) * scale, 0, 255).astype(np.uint8)


def image_grid_figure(images: Any, titles: Sequence[str] | None = None, ncols: int = 4, title: str | None = None,
                      tile_px: int = 160):
    """Grey images ``(K, M, M)`` in a grid (each contrast-stretched on its own), ``[y, x]`` with y up."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    imgs = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    if imgs.ndim == 2:
        imgs = imgs[None]
    if imgs.ndim != 3 or len(imgs) == 0:
        raise ConfigError(f"image_grid_figure needs images (K, M, M), got shape {imgs.shape}")
    k = len(imgs)
    ncols = max(1, min(int(ncols), k))
    nrows = -(-k // ncols)
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=list(titles) if titles else None,
                        horizontal_spacing=0.02, vertical_spacing=0.08 if titles else 0.02)
    for i, img in enumerate(imgs):
        g = _to_uint8(np.asarray(img, dtype=np.float64))[::-1]  # row 0 at the bottom (y up)
        fig.add_trace(go.Image(z=np.repeat(g[..., None], 3, axis=2), hoverinfo="skip"), row=i // ncols + 1, col=i % ncols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    fig.update_layout(title=title, width=ncols * tile_px + 40, height=nrows * (tile_px + (24 if titles else 4)) + (60 if title else 20),
                      margin=dict(l=10, r=10, t=60 if title else 20, b=10))
    if titles:
        fig.update_annotations(font_size=11)
    return fig


def map_slices_figure(volume: Any, title: str | None = None, index: int | None = None, projection: bool = True):
    """Central slices of a map ``[z, y, x]`` (xy, xz, yz at ``index``, default ``M // 2``) and its z-projection."""
    v = volume.detach().cpu().numpy() if hasattr(volume, "detach") else np.asarray(volume)
    if v.ndim != 3:
        raise ConfigError(f"map_slices_figure needs a 3D map [z, y, x], got shape {v.shape}")
    i = v.shape[0] // 2 if index is None else int(index)
    panels = [v[i], v[:, i, :], v[:, :, i]]
    names = [f"xy (z = {i})", f"xz (y = {i})", f"yz (x = {i})"]
    if projection:
        panels.append(v.sum(axis=0))
        names.append("sum along z")
    return image_grid_figure(np.stack(panels), titles=names, ncols=len(panels), title=title)
