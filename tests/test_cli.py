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


@pytest.mark.parametrize("verb", ["simulate", "build", "check", "train", "analyze", "morph", "evaluate", "select",
                                  "demo"])
def test_every_verb_has_help(verb):
    from gmmplat.cli import VERBS

    out = run_cli(verb, "--help")
    assert out.returncode == 0, out.stderr
    assert "usage: gmmplat " + verb in out.stdout
    assert VERBS[verb] in " ".join(out.stdout.split())  # the one-line help is the description


def test_verbs_are_the_command_modules_and_their_help_is_written_once():
    """Every module of gmmplat/commands with a ``run`` is a verb of VERBS (and back), and none
    writes its own one-line help beside VERBS."""
    import ast
    from pathlib import Path

    import gmmplat.commands
    from gmmplat.cli import VERBS

    verbs = set()
    for path in Path(gmmplat.commands.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        if {"run", "add_arguments"} <= functions:
            verbs.add(path.stem)
        assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        assert "HELP" not in assigned, f"{path.name}: one-line help belongs in gmmplat.cli.VERBS"
    assert verbs == set(VERBS)


def test_top_level_help_imports_no_verb_module():
    code = ("import contextlib, io, sys; from gmmplat.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
            "print(sorted(m for m in sys.modules if m.startswith('gmmplat.commands.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_options_shared_by_verbs_are_defined_once():
    """An option that several verbs describe with the same words comes from SHARED_OPTIONS,
    whose help texts appear nowhere else in the verb modules."""
    from collections import defaultdict
    from pathlib import Path

    import gmmplat.commands
    from gmmplat.cli import VERBS, build_parser
    from gmmplat.commands._common import SHARED_OPTIONS

    seen = defaultdict(set)
    for verb in VERBS:
        sub = next(a for a in build_parser(verb)._actions if a.dest == "verb").choices[verb]
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option not in ("--help", "--plugin"):
                    seen[(option, action.help)].add(verb)
    repeated = {key for key, verbs in seen.items() if len(verbs) > 1}
    for option, text in repeated:
        if option in SHARED_OPTIONS and SHARED_OPTIONS[option]["help"] == text:
            continue
        if option in ("--star", "--cs", "--passthrough", "--datadir", "--project-dir",
                      "--amplitude-contrast", "--voltage", "--cs-mm", "--trust-star-pixel-size"):
            continue  # gmmplat.commands.particle_args, written once
        pytest.fail(f"{option} has the same help in {sorted(seen[(option, text)])}: put it in SHARED_OPTIONS")
    folder = Path(gmmplat.commands.__file__).parent
    for path in folder.glob("*.py"):
        if path.name != "_common.py":
            for option, kwargs in SHARED_OPTIONS.items():
                assert kwargs["help"] not in path.read_text(), f"{path.name} repeats the help of {option}"


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
