"""Fixtures for the browser tests: the SMOKE notebook run, a Voila server, headless Chromium.

Skipped with a reason when Playwright, Voila or a Chromium binary is missing (install:
``apt-get install -y chromium`` and ``pip install playwright voila``; no browser download).
Screenshots go to ``$GMMPLAT_BROWSER_SHOTS`` or a pytest temporary folder (printed in
failure messages).  ``$GMMPLAT_NOTEBOOK_SESSION`` names a folder whose SMOKE run is reused
(run once, then delete the folder to rerun).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from pagecheck import NO_WEBGL_ARGS, NOTEBOOK_DIR, PAGE, WEBGL_ARGS, VoilaServer, chromium_path


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright; it drives the system Chromium)"
    if importlib.util.find_spec("voila") is None:
        return "voila is not installed (pip install voila)"
    if chromium_path() is None:
        return "no Chromium binary (/usr/bin/chromium; apt-get install -y chromium, or set GMMPLAT_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def browser_ready():
    reason = _missing()
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")


@pytest.fixture(scope="session")
def smoke_session(tmp_path_factory):
    """The SMOKE papermill run of every notebook, shared with tests/test_notebooks.py."""
    from gmmplat.demo.notebooks import run_once

    return run_once(NOTEBOOK_DIR, session_dir(tmp_path_factory), smoke=True)


def session_dir(tmp_path_factory) -> Path:
    """``$GMMPLAT_NOTEBOOK_SESSION`` (reused across pytest runs while developing) or a pytest temp folder."""
    env = os.environ.get("GMMPLAT_NOTEBOOK_SESSION")
    return Path(env) if env else tmp_path_factory.getbasetemp() / "notebook_session"


@pytest.fixture(scope="session")
def shots_dir(tmp_path_factory) -> Path:
    env = os.environ.get("GMMPLAT_BROWSER_SHOTS")
    d = Path(env) if env else tmp_path_factory.mktemp("browser_screenshots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def voila(browser_ready, smoke_session, tmp_path_factory):
    """One Voila server over the executed SMOKE notebooks and the self-contained test page."""
    results, _, _, executed = smoke_session
    root = tmp_path_factory.mktemp("voila_root")
    shutil.copy(PAGE, root / PAGE.name)
    for r in results:
        if r.ok:
            shutil.copy(executed / r.name, root / r.name)
    server = VoilaServer(root, root.parent / "voila.log")
    yield server
    server.stop()


def _launch(playwright, args):
    try:
        return playwright.chromium.launch(executable_path=chromium_path(), args=args, timeout=60_000)
    except Exception as exc:  # no usable browser on this machine
        pytest.skip(f"browser tests skipped: Chromium does not start ({str(exc).splitlines()[0]})")


@pytest.fixture(scope="session")
def playwright_instance(browser_ready):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance):
    b = _launch(playwright_instance, WEBGL_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="session")
def browser_no_webgl(playwright_instance):
    b = _launch(playwright_instance, NO_WEBGL_ARGS)
    yield b
    b.close()
