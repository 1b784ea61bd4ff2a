"""Interrupting ``gmmplat train`` loses nothing: Ctrl-C exits 130 with the command that
continues the run, ``kill -9`` leaves a resumable folder, and the resumed run ends
bit-identical to an uninterrupted one (same seed, same thread count)."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_train_fixtures import make_dataset, one_thread  # noqa: F401 (autouse fixture)

from gmmplat import cli
from gmmplat.train import Trainer
from gmmplat.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """Particles and the argv of a small run, with that run done uninterrupted."""
    folder = tmp_path_factory.mktemp("interrupt")
    star, gmm, _ = make_dataset(folder, n=24)
    argv = ["train", "--star", str(star), "--gmm", str(gmm), "--preset", "rigid", "--domain", "domain",
            "--epochs", "3", "--batch-size", "8", "--threads", "1", "--no-progress"]
    assert cli.main([*argv, "--out", str(folder / "uninterrupted")]) == 0
    return folder, argv


def same_run(a, b):
    sa = torch.load(a / "model.pt", weights_only=False)["state_dict"]
    sb = torch.load(b / "model.pt", weights_only=False)["state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert (a / "latent.npy").read_bytes() == (b / "latent.npy").read_bytes()


def test_ctrl_c_exits_130_and_prints_the_resume_command(reference, tmp_path, capsys, monkeypatch):
    folder, argv = reference
    original, count = Trainer._losses, {"n": 0}

    def losses(self, *a, **k):
        count["n"] += 1
        if count["n"] == 5:  # epoch 2 (3 training batches per epoch)
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "_losses", losses)
    capsys.readouterr()
    assert cli.main([*argv, "--out", str(tmp_path / "run")]) == 130
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gmmplat train: interrupted; continue with: gmmplat train ")
    command = lines[0].split("continue with: ", 1)[1]
    assert command.endswith(" --resume") and load_checkpoint(tmp_path / "run" / "checkpoint.pt")["epoch"] == 1
    monkeypatch.undo()
    assert cli.main(shlex.split(command)[1:]) == 0
    same_run(folder / "uninterrupted", tmp_path / "run")


def test_kill_9_then_resume_is_bit_identical(reference, tmp_path):
    folder, argv = reference
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "gmmplat.cli", *argv, "--out", str(run)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoint.pt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    if proc.returncode != -signal.SIGKILL or (run / "model.pt").exists():
        pytest.fail(f"the run ended before it could be killed (exit {proc.returncode})")
    assert cli.main([*argv, "--out", str(run), "--resume"]) == 0
    same_run(folder / "uninterrupted", run)
