"""Helpers for the browser tests: a Voila server, a headless Chromium, and checks that the
viewers on a served notebook really draw.

A viewer "draws" when the screenshot of its canvas has at least ``MIN_COLOURED_PIXELS``
coloured pixels (max − min over R, G, B > ``SATURATION``): a blank, black, white or grey
canvas has none; plotly's 3D markers (Viridis, Plasma, mask colours) and NGL's cartoon
(residue-index rainbow) have thousands.
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
PAGE = Path(__file__).with_name("viewers_page.ipynb")  # every viewer, no sample data needed
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
WEBGL_ARGS = ["--no-sandbox", "--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--disable-background-networking",
              "--disable-gpu-sandbox", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
              "--disable-component-update", "--disable-sync"]
NO_WEBGL_ARGS = ["--no-sandbox", "--disable-webgl", "--disable-webgl2", "--disable-3d-apis", "--disable-gpu",
                 "--disable-background-networking", "--disable-dev-shm-usage", "--no-first-run"]
SATURATION = 40
MIN_COLOURED_PIXELS = 300
MIN_CHANGED_PIXELS = 50
# Voila's own "lab" template links Font Awesome from a CDN (share/jupyter/voila/templates/lab/index.html.j2);
# the tests block it like every other non-loopback request and accept only this one.
ALLOWED_EXTERNAL = ("https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@",)
ERROR_TEXTS = ("Error displaying widget", "is not registered", "Traceback (most recent call last)",
               "Failed to load model class", "WebGL is not supported", "Click to show javascript error")
# browser console errors that mean a widget failed (Voila only shows "Click to show javascript error")
CONSOLE_ERRORS = ("is not registered", "Failed to load model class", "Error displaying widget", "[anywidget]",
                  "Could not create a view", "Could not create model")
PLOTLY_3D_CANVAS = ".js-plotly-plot .gl-container canvas"


def chromium_path() -> str | None:
    for p in (os.environ.get("GMMPLAT_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if p and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class VoilaServer:
    """``voila ROOT`` on a free loopback port; stopped by its own PID (process group)."""

    def __init__(self, root: Path, log_path: Path, timeout_s: float = 90.0):
        self.root, self.port = Path(root), free_port()
        self.log = open(log_path, "w")
        cmd = [sys.executable, "-m", "voila", str(self.root), "--no-browser", f"--port={self.port}",
               "--Voila.ip=127.0.0.1", "--show_tracebacks=True", "--VoilaExecutor.timeout=300",
               "--ServerApp.open_browser=False"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=str(self.root))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited with {self.proc.returncode}; see {log_path}")
            try:
                urllib.request.urlopen(f"{self.base}/", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer: the server is up
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"voila did not start within {timeout_s:.0f} s; see {log_path}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook_name: str) -> str:
        return f"{self.base}/voila/render/{notebook_name}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group of our own child (start_new_session)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


def coloured_pixels(png: bytes) -> int:
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > SATURATION).sum())


def changed_pixels(png_a: bytes, png_b: bytes) -> int:
    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(png_a)).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(io.BytesIO(png_b)).convert("RGB"), dtype=np.int16)
    if a.shape != b.shape:
        return int(a.size)
    return int((np.abs(a - b).max(axis=2) > 30).sum())


@dataclass
class Viewer:
    """One canvas on the page: ``kind`` (plotly-3d, ngl), a readable ``name``, its element."""

    kind: str
    name: str
    handle: object


@dataclass
class PageReport:
    notebook: str
    viewers: list[tuple[str, str, int]] = field(default_factory=list)  # (kind, name, coloured pixels)
    failures: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)


_NAME_JS = """(el) => {
  const tagged = el.closest('.gmmplat-gmm, .gmmplat-masks, .gmmplat-latent, .gmmplat-model');
  const plot = el.closest('.js-plotly-plot');
  const title = plot ? (plot.querySelector('.gtitle') || {}).textContent || '' : '';
  const cls = tagged ? [...tagged.classList].find(c => c.startsWith('gmmplat-')) : '';
  return [cls || '', title];
}"""


def find_viewers(page) -> list[Viewer]:
    """Every plotly 3D canvas and every other (NGL) canvas with a non-zero size, named."""
    out, counts = [], {}
    for el in page.query_selector_all("canvas"):
        box = el.bounding_box()
        if not box or box["width"] < 20 or box["height"] < 20:
            continue
        in_plotly = el.evaluate("e => !!e.closest('.js-plotly-plot')")
        if in_plotly and not el.evaluate("e => !!e.closest('.gl-container')"):
            continue  # plotly 2D helper canvases (scattergl) are not 3D viewers
        cls, title = el.evaluate(_NAME_JS)
        kind = "plotly-3d" if in_plotly else "ngl"
        base = cls.replace("gmmplat-", "") or kind
        counts[base] = counts.get(base, 0) + 1
        name = f"{base} #{counts[base]}" + (f" '{title.strip()}'" if title.strip() else "")
        out.append(Viewer(kind, name, el))
    return out


def wait_settled(page, timeout_s: float = 90.0, quiet_s: float = 3.0) -> None:
    """Wait for Voila to finish executing and the widgets' canvases to stop appearing."""
    deadline = time.monotonic() + timeout_s
    page.wait_for_load_state("load", timeout=timeout_s * 1000)
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        state = page.evaluate("""() => [document.querySelectorAll('canvas').length,
            document.querySelectorAll('.jupyter-widgets, .widget-output, .js-plotly-plot').length,
            !!document.querySelector('#loading, .voila-spinner-color1, .spinner')]""")
        if state != last:
            last, since = state, time.monotonic()
        elif time.monotonic() - since >= quiet_s and not state[2]:
            return
        time.sleep(0.5)


def check_page(page, notebook: str, shot_dir: Path, external: list[str], min_viewers: int = 0,
               console: list[str] = ()) -> PageReport:
    """Check every viewer on a loaded page; the report's ``failures`` name viewer and notebook."""
    report = PageReport(notebook, external_requests=list(external))
    for line in dict.fromkeys(console):  # unique, in order
        if any(e in line for e in CONSOLE_ERRORS):
            report.failures.append(f"{notebook}: browser console: {line.splitlines()[0][:300]}")
    text = page.inner_text("body")
    for err in ERROR_TEXTS:
        if err in text:
            i = text.index(err)
            report.failures.append(f"{notebook}: page shows {err!r}: ...{text[max(0, i - 150): i + 250]!r}")
    for url in external:
        if not url.startswith(ALLOWED_EXTERNAL):
            report.failures.append(f"{notebook}: request to a non-loopback host: {url}")
    for cls, need in (("gmmplat-model", "canvas"), ("gmmplat-gmm", PLOTLY_3D_CANVAS.split(" ", 1)[1]),
                      ("gmmplat-masks", PLOTLY_3D_CANVAS.split(" ", 1)[1]), ("gmmplat-latent", ".scatterlayer .point")):
        for k, el in enumerate(page.query_selector_all(f".{cls}")):
            if not el.query_selector(need):
                report.failures.append(f"{notebook}: viewer {cls.replace('gmmplat-', '')} #{k + 1} has no "
                                       f"{'canvas' if 'canvas' in need else 'points'} (it did not draw)")
    viewers = find_viewers(page)
    if len(viewers) < min_viewers:
        report.failures.append(f"{notebook}: {len(viewers)} viewer canvas(es) on the page, expected at least {min_viewers}")
    for k, v in enumerate(viewers):
        v.handle.scroll_into_view_if_needed()
        png = v.handle.screenshot()
        path = shot_dir / f"{Path(notebook).stem}__{k:02d}_{v.kind}.png"
        path.write_bytes(png)
        report.screenshots.append(path)
        n = coloured_pixels(png)
        report.viewers.append((v.kind, v.name, n))
        if n < MIN_COLOURED_PIXELS:
            report.failures.append(f"{notebook}: viewer {v.name} ({v.kind}) drew nothing: {n} coloured pixels "
                                   f"(< {MIN_COLOURED_PIXELS}); screenshot {path}")
    return report


def open_page(browser, url: str, viewport=(1280, 1000), timeout_s: float = 240.0):
    """Load ``url`` in a fresh context: non-loopback requests are aborted and recorded.

    Returns ``(context, page, external_requests, console_errors)``; the caller closes the context.
    """
    ctx = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    external: list[str] = []
    console: list[str] = []

    def route(r):
        u = r.request.url
        if u.startswith(("http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:")):
            r.continue_()
        else:
            external.append(u)
            r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console.append(str(e)))
    page.goto(url, timeout=timeout_s * 1000, wait_until="load")
    wait_settled(page, timeout_s=timeout_s)
    return ctx, page, external, console


PLOTLY_3D_TYPES = {"scatter3d", "mesh3d", "isosurface", "volume", "surface", "cone", "streamtube"}


def _plotly_trace_types(html: str) -> set[str]:
    """Trace types of the figure in a plotly HTML output (the data list of ``Plotly.newPlot``)."""
    import json

    i = html.find("Plotly.newPlot(")
    if i < 0:
        return set()
    start = html.find("[", i)
    try:
        data, _ = json.JSONDecoder().raw_decode(html, start)
    except ValueError:
        return set()
    return {t.get("type", "scatter") for t in data if isinstance(t, dict)}


def expected_viewers(executed_notebook: Path) -> int:
    """3D viewers a papermill-executed notebook displayed: static plotly 3D figures,
    NGLWidgets and latent explorers (one live GMM figure each)."""
    import nbformat

    nb = nbformat.read(str(executed_notebook), as_version=4)
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            html = data.get("text/html", "")
            text = data.get("text/plain", "")
            if 'class="plotly-graph-div"' in html[:1000] and _plotly_trace_types(html) & PLOTLY_3D_TYPES:
                n += 1
            elif "application/vnd.jupyter.widget-view+json" in data and text.startswith(("NGLWidget(", "LatentExplorer(")):
                n += 1
    return n


def move_slider_and_compare(page, notebook: str, shot_dir: Path, timeout_s: float = 30.0) -> list[str]:
    """Move each latent explorer's slider to its first frame; the GMM figure (and the model
    view inside the explorer, if any) must draw something different.  Returns failures."""
    failures = []
    explorers = page.query_selector_all(".gmmplat-latent-explorer")
    for k, ex in enumerate(explorers):
        ex.scroll_into_view_if_needed()
        targets = []
        gmm = ex.query_selector(".gmmplat-gmm")
        if gmm is not None and gmm.query_selector(PLOTLY_3D_CANVAS):
            targets.append(("gmm", gmm.query_selector(PLOTLY_3D_CANVAS)))
        model = ex.query_selector(".gmmplat-model canvas")
        if model is not None:
            targets.append(("model", model))
        if not targets:
            failures.append(f"{notebook}: latent explorer #{k + 1} has no drawn GMM or model viewer")
            continue
        before = {name: el.screenshot() for name, el in targets}
        seq0 = gmm.get_attribute("data-gmmplat-seq") if gmm is not None else None
        handle = ex.query_selector(".gmmplat-latent-slider .noUi-handle")
        if handle is None:
            failures.append(f"{notebook}: latent explorer #{k + 1} has no slider")
            continue
        value0 = handle.get_attribute("aria-valuenow")
        handle.focus()
        page.keyboard.press("Home")
        if handle.get_attribute("aria-valuenow") == value0:
            page.keyboard.press("End")
        deadline = time.monotonic() + timeout_s
        changed: dict[str, int] = {}
        while time.monotonic() < deadline and len(changed) < len(targets):
            time.sleep(0.5)
            if gmm is not None and gmm.get_attribute("data-gmmplat-seq") == seq0:
                continue  # the kernel's update has not been drawn yet
            for name, el in targets:
                n = changed_pixels(before[name], el.screenshot())
                if n >= MIN_CHANGED_PIXELS:
                    changed[name] = n
        (shot_dir / f"{Path(notebook).stem}__explorer{k + 1}.png").write_bytes(ex.screenshot())
        for name, el in targets:
            after = el.screenshot()
            stem = f"{Path(notebook).stem}__explorer{k + 1}_{name}"
            (shot_dir / f"{stem}_before.png").write_bytes(before[name])
            (shot_dir / f"{stem}_after.png").write_bytes(after)
            if name not in changed:
                failures.append(f"{notebook}: moving latent explorer #{k + 1}'s slider did not change the {name} "
                                f"viewer ({changed_pixels(before[name], after)} pixels differ, < {MIN_CHANGED_PIXELS}); "
                                f"screenshots {shot_dir / stem}_*.png")
    return failures
