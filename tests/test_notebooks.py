"""Every ordered notebook runs headless (papermill, SMOKE = True) and shows figures.

One SMOKE run of ``notebooks/NN_*.ipynb`` in order per pytest session (shared with the
browser tests), data and outputs in a temporary folder; ``$GMMPLAT_NOTEBOOK_SESSION``
names a folder to reuse while developing (delete it to rerun).
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("papermill")
pytest.importorskip("plotly")

from gmmplat.demo.notebooks import NOTEBOOK_NAME, run_once  # noqa: E402

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
FIGURE_MIME = ("image/png", "image/svg+xml", "application/vnd.jupyter.widget-view+json")


@pytest.fixture(scope="session")
def smoke_session(tmp_path_factory):
    env = os.environ.get("GMMPLAT_NOTEBOOK_SESSION")
    work = Path(env) if env else tmp_path_factory.getbasetemp() / "notebook_session"
    return run_once(NOTEBOOK_DIR, work, smoke=True)


def figure_outputs(nb) -> int:
    """Outputs that are figures: plotly HTML, images, widgets (viewers)."""
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if any(m in data for m in FIGURE_MIME) or 'class="plotly-graph-div"' in data.get("text/html", "")[:1000]:
                n += 1
    return n


def test_notebooks_exist_and_follow_the_convention():
    assert NOTEBOOKS and NOTEBOOKS[0].startswith("00_"), NOTEBOOKS
    for name in NOTEBOOKS:
        nb = nbformat.read(str(NOTEBOOK_DIR / name), as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code, f"{name}: no code cell"
        first = code[0]
        assert "parameters" in first.metadata.get("tags", []), f"{name}: first code cell is not tagged 'parameters'"
        for var in ("SMOKE = False", "DATA_DIR =", "OUT_DIR ="):
            assert var in first.source, f"{name}: parameters cell lacks {var!r}"
        assert not any(c.get("outputs") for c in code), f"{name}: committed with outputs (clear them)"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_smoke_setting(name, smoke_session):
    results, _, _, executed = smoke_session
    result = next(r for r in results if r.name == name)
    assert result.ok, f"{name}: {result.status}: {result.error} (executed copy: {result.output_path})"
    nb = nbformat.read(str(executed / name), as_version=4)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: error outputs {[e.get('ename') for e in errors]}"
    assert figure_outputs(nb) >= 1, f"{name}: the executed notebook shows no figure"


def test_notebook_00_simulated_every_smoke_dataset(smoke_session):
    from gmmplat.demo.notebooks import DATASETS, SMOKE_SIMULATION, dataset_ready

    results, data, _, _ = smoke_session
    if not results[0].ok:
        pytest.fail(f"00 did not run: {results[0].error}")
    for name in DATASETS:
        assert dataset_ready(data, name), name
        import json

        meta = json.loads((data / name / "metadata.json").read_text())
        assert meta["options"]["box"] == SMOKE_SIMULATION["box"]
        assert meta["options"]["n_particles"] == SMOKE_SIMULATION["n_particles"]
