"""The command line: one-line errors, exit code != 0, no traceback, nothing half-written."""
import subprocess
import sys

import pytest


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "gmmplat.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_help_lists_every_verb():
    from gmmplat.cli import VERBS

    out = run_cli("--help")
    assert out.returncode == 0
    for verb in VERBS:
        assert verb in out.stdout


@pytest.mark.parametrize("verb", ["simulate", "build", "train", "analyze", "morph", "evaluate"])
def test_every_verb_has_help(verb):
    out = run_cli(verb, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: gmmplat " + verb in out.stdout


def test_missing_map_is_one_line_error(tmp_path):
    out = run_cli("build", "--map", tmp_path / "missing.mrc", "--out", tmp_path / "o")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.mrc" in lines[0] and "Traceback" not in out.stderr


def test_truncated_map_is_one_line_error(tmp_path):
    import numpy as np

    from gmmplat.io.mrc import write_map

    path = tmp_path / "map.mrc"
    write_map(path, np.zeros((16, 16, 16), np.float32), 2.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    out = run_cli("build", "--map", path, "--out", tmp_path / "o")
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and "map.mrc" in out.stderr


def test_make_lab_starts_as_root(tmp_path):
    """Containers run as root, where jupyter refuses to start without --allow-root."""
    import os
    import shutil
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    stamp = tmp_path / "stamp"
    stamp.touch()
    out = subprocess.run(["make", "-n", "-C", str(root), "lab", f"STAMP={stamp}", f"VENV={tmp_path}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = [ln for ln in out.stdout.splitlines() if "jupyter lab" in ln][0]
    assert ("--allow-root" in line) == (os.getuid() == 0), line
