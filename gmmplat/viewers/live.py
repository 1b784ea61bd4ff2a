"""A plotly figure that updates in place from the kernel, with a front end of a few lines.

Why not ``plotly.graph_objects.FigureWidget``: since plotly 6 it is an anywidget whose
front-end module is the whole 5 MB plotly bundle, compiled once per figure; anywidget
gives a model 2 s to load its module and otherwise drops every later message from the
kernel ("[anywidget] Failed to initialize model.").  With three FigureWidgets on a Voila
page, or one on a busy 2-core machine, figures stay blank or stop updating.

:class:`LiveFigure` draws with the plotly.js that :func:`gmmplat.viewers.setup_notebook`
embeds once in the page (``window.Plotly``), so its own module is tiny and loads at
once; ``restyle``/``relayout`` send only the changed properties (``Plotly.restyle``),
keeping the camera.  The Python-side ``figure`` mirrors the drawn state.
"""
from __future__ import annotations

import json
from typing import Any

import anywidget
import numpy as np
import traitlets

_ESM = r"""
function whenPlotly(el) {
  return new Promise((resolve) => {
    let waited = 0;
    const poll = () => {
      if (window.Plotly && window.Plotly.react) return resolve(window.Plotly);
      waited += 100;
      if (waited === 10000) el.dataset.gmmplatError = "plotly.js not loaded: call gmmplat.viewers.setup_notebook() first";
      setTimeout(poll, 100);
    };
    poll();
  });
}
export default {
  render({ model, el }) {
    const div = document.createElement("div");
    div.className = "gmmplat-live-plot";
    el.appendChild(div);
    let drawn = Promise.resolve();
    const draw = () => {
      drawn = whenPlotly(el).then((Plotly) => {
        const fig = model.get("figure");
        return Plotly.react(div, fig.data || [], fig.layout || {}, { displaylogo: false, responsive: true });
      });
    };
    const update = () => {
      const u = model.get("update") || {};
      drawn = drawn.then(async () => {
        const Plotly = window.Plotly;
        for (const r of u.restyle || []) await Plotly.restyle(div, r.data, [r.trace]);
        if (u.layout && Object.keys(u.layout).length) await Plotly.relayout(div, u.layout);
        el.dataset.gmmplatSeq = String(u.seq || 0);
      });
    };
    draw();
    drawn.then(() => {  // box/lasso selections of trace 0 go back to the kernel as point indices
      if (!div.on) return;
      div.on("plotly_selected", (ev) => {
        const pts = ev && ev.points ? ev.points.filter((p) => p.curveNumber === 0).map((p) => p.pointIndex) : [];
        model.set("selected", pts);
        model.save_changes();
      });
    });
    model.on("change:figure", draw);
    model.on("change:update", update);
    return () => { try { window.Plotly && window.Plotly.purge(div); } catch (e) {} };
  },
};
"""


def _plain(value: Any) -> Any:
    """Numpy arrays and scalars -> lists / floats (``Plotly.restyle`` takes plain JSON)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class LiveFigure(anywidget.AnyWidget):
    """A plotly figure widget for in-place updates; ``fig.figure`` is the ``go.Figure`` mirror.

    ``restyle(trace, props)`` and ``relayout(props)`` take plotly property paths, e.g.
    ``restyle(0, {"x": xs, "marker.size": s})``; the calls inside ``with fig.batch_update():``
    go to the front end as one message.  ``selected`` holds the indices of trace 0's points
    in the last box/lasso selection (observe it with ``fig.observe(fn, names="selected")``).
    """

    _esm = _ESM
    figure = traitlets.Dict().tag(sync=True)
    update = traitlets.Dict().tag(sync=True)
    selected = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(self, fig, dom_class: str | None = None, **kwargs):
        import plotly.graph_objects as go

        super().__init__(**kwargs)
        self._fig = go.Figure(fig)
        self._pending: dict | None = None
        self._seq = 0
        self.figure = json.loads(self._fig.to_json())
        if dom_class:
            self.add_class(dom_class)

    # plotly-like read access -------------------------------------------------
    @property
    def data(self):
        return self._fig.data

    @property
    def layout(self):
        return self._fig.layout

    def to_figure(self):
        """A static copy (``go.Figure``) of the current state."""
        import plotly.graph_objects as go

        return go.Figure(self._fig)

    # updates -----------------------------------------------------------------
    def restyle(self, trace: int, props: dict) -> None:
        """Set properties (plotly paths such as ``"marker.size"``) of trace ``trace``."""
        props = {k: _plain(v) for k, v in props.items()}
        for k, v in props.items():
            self._fig.data[trace][k] = v  # plotly accepts dotted property paths
        self._queue({"restyle": [{"trace": int(trace), "data": {k: [v] for k, v in props.items()}}]})

    def relayout(self, props: dict) -> None:
        """Set layout properties (plotly paths such as ``"title.text"``)."""
        props = {k: _plain(v) for k, v in props.items()}
        for k, v in props.items():
            self._fig.layout[k] = v
        self._queue({"layout": props})

    def _queue(self, part: dict) -> None:
        if self._pending is None:
            self._emit(part)
            return
        self._pending.setdefault("restyle", []).extend(part.get("restyle", []))
        self._pending.setdefault("layout", {}).update(part.get("layout", {}))

    def _emit(self, part: dict) -> None:
        self._seq += 1
        self.update = {"restyle": part.get("restyle", []), "layout": part.get("layout", {}), "seq": self._seq}

    def batch_update(self):
        """Context manager: the updates inside go out as one message."""
        return _Batch(self)


class _Batch:
    """Collects updates; nested batches join the outermost one, which sends them."""

    def __init__(self, fig: LiveFigure):
        self.fig, self.outer = fig, False

    def __enter__(self):
        if self.fig._pending is None:
            self.fig._pending, self.outer = {}, True
        return self.fig

    def __exit__(self, *exc):
        if self.outer:
            pending, self.fig._pending = self.fig._pending, None
            if exc[0] is None and pending:
                self.fig._emit(pending)
        return False
