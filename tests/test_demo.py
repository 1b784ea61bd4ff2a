"""``gmmplat demo`` and the sample data it keeps: stale datasets (simulated before the current
origin convention) are simulated again, current ones are kept."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gmmplat.demo import notebooks
from gmmplat.synthetic.simulate import ORIGIN_CONVENTION

TINY = dict(n_particles=8, box=32, pixel_size_angstrom=4.0, images_per_stack=8, n_consensus=2)


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(notebooks, "SMOKE_SIMULATION", TINY)


def _meta(folder):
    return json.loads((folder / "metadata.json").read_text())


def test_stale_dataset_is_simulated_again_and_current_one_kept(tmp_path, tiny):
    lines = []
    assert notebooks.ensure_sample_data(tmp_path, ("hinge",), smoke=True, progress=lines.append) == ["hinge"]
    meta = _meta(tmp_path / "hinge")
    assert meta["origin_convention"] == ORIGIN_CONVENTION and meta["options"]["n_particles"] == 8
    assert notebooks.dataset_ready(tmp_path, "hinge")

    star = (tmp_path / "hinge" / "particles.star").stat().st_mtime_ns
    lines.clear()
    assert notebooks.ensure_sample_data(tmp_path, ("hinge",), smoke=True, progress=lines.append) == []
    assert lines == [] and (tmp_path / "hinge" / "particles.star").stat().st_mtime_ns == star

    for stale in ({k: v for k, v in meta.items() if k != "origin_convention"},   # before the marker
                  {**meta, "origin_convention": "relion: image = projection translated by +origin"}):
        (tmp_path / "hinge" / "metadata.json").write_text(json.dumps(stale))
        assert not notebooks.dataset_ready(tmp_path, "hinge")
        lines.clear()
        assert notebooks.ensure_sample_data(tmp_path, ("hinge",), smoke=True, progress=lines.append) == ["hinge"]
        said = [line for line in lines if "again" in line]
        assert len(said) == 1 and "'hinge'" in said[0] and "origin convention" in said[0], lines
        assert _meta(tmp_path / "hinge")["origin_convention"] == ORIGIN_CONVENTION


def test_incomplete_dataset_is_simulated_without_the_stale_line(tmp_path, tiny):
    (tmp_path / "bend").mkdir()
    (tmp_path / "bend" / "metadata.json").write_text("{not json")
    lines = []
    assert notebooks.ensure_sample_data(tmp_path, ("bend",), smoke=True, progress=lines.append) == ["bend"]
    assert not any("again" in line for line in lines) and notebooks.dataset_ready(tmp_path, "bend")


def test_demo_is_a_verb_and_python_m_gmmplat_demo_its_alias(tmp_path):
    from gmmplat.cli import build_parser

    args = build_parser("demo").parse_args(["demo", "--smoke", "--out", str(tmp_path / "o")])
    assert args.smoke and args.data == "sample_data" and args.out == str(tmp_path / "o")
    for argv in (["-m", "gmmplat", "demo"], ["-m", "gmmplat.demo.run"]):
        out = subprocess.run([sys.executable, *argv, "--data", str(tmp_path / "d"), "--notebooks", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert out.stderr.strip().splitlines() == [
            f"gmmplat demo: error: {tmp_path}: no notebooks named NN_*.ipynb"], out.stderr
    assert not (tmp_path / "d").exists()  # refused before simulating anything
