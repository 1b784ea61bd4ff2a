"""The notebooks' viewers really draw in a browser (Voila + headless Chromium with software WebGL).

For each ordered notebook (its SMOKE papermill run's data and outputs) and for a
self-contained page of every viewer: each 3D canvas (plotly scenes, NGL stages) has
coloured pixels, no widget error text shows, no request leaves the loopback host
(except Voila's own icon stylesheet, blocked), and moving a latent explorer's slider
changes what its GMM figure and model view draw.  A negative control shows the
detector fails when WebGL is off.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from pagecheck import NOTEBOOK_DIR, PAGE, check_page, expected_viewers, move_slider_and_compare, open_page

NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def _check(browser, voila, name: str, shots_dir: Path, min_viewers: int, slider: bool) -> tuple[list[str], object]:
    ctx, page, external, console = open_page(browser, voila.url(name))
    try:
        report = check_page(page, name, shots_dir, external, min_viewers=min_viewers, console=console)
        failures = list(report.failures)
        if slider and not failures:
            failures += move_slider_and_compare(page, name, shots_dir)
        return failures, report
    finally:
        ctx.close()


def test_viewers_page_draws_and_slider_moves_them(browser, voila, shots_dir):
    failures, report = _check(browser, voila, PAGE.name, shots_dir, min_viewers=3, slider=True)
    assert not failures, "\n".join(failures)
    kinds = sorted(kind for kind, _, _ in report.viewers)
    assert kinds.count("plotly-3d") >= 2 and kinds.count("ngl") >= 1, report.viewers


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_viewers_draw(name, browser, voila, smoke_session, shots_dir):
    results, _, _, executed = smoke_session
    result = next(r for r in results if r.name == name)
    if not result.ok:
        pytest.fail(f"{name}: the SMOKE papermill run did not complete ({result.status}: {result.error}); "
                    f"see tests/test_notebooks.py")
    failures, report = _check(browser, voila, name, shots_dir, min_viewers=expected_viewers(executed / name),
                              slider=True)
    assert not failures, "\n".join(failures)


def test_detector_reports_blank_viewers_without_webgl(browser_no_webgl, voila, shots_dir):
    """Negative control: the same page with WebGL disabled must fail the check, naming viewers."""
    out = shots_dir / "no_webgl"
    out.mkdir(exist_ok=True)
    ctx, page, external, console = open_page(browser_no_webgl, voila.url(PAGE.name))
    try:
        report = check_page(page, PAGE.name, out, external, min_viewers=3, console=console)
    finally:
        ctx.close()
    text = "\n".join(report.failures)
    print("without WebGL the check reports:\n" + text)
    assert "WebGL is not supported" in text, text  # plotly's own message is caught
    for viewer in ("masks", "gmm", "model"):  # and every viewer is named as not drawn
        assert any(f"viewer {viewer}" in f or f"'{viewer}'" in f for f in report.failures), (viewer, text)
