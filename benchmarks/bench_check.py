"""``gmmplat check`` on 500 particles of box 128: wall time of the whole command.

Usage:  python benchmarks/bench_check.py [--work DIR] [--threads 2]

Simulates the ``hinge`` sample dataset at 128 px, 1 Å/px (500 particles, SNR 0.05) into
``--work`` unless it is there, then runs ``gmmplat check`` three times in fresh processes,
against the map and against the model, and prints the wall time of each run (Python
start-up included) and the check's own time (as the command reports it).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def simulate(folder: Path) -> None:
    from gmmplat.synthetic.simulate import simulate_dataset

    if not (folder / "metadata.json").exists():
        simulate_dataset("hinge", folder, n_particles=500, box=128, pixel_size_angstrom=1.0,
                         images_per_stack=500, progress=False)


def run_check(folder: Path, out: Path, threads: int, model: bool) -> tuple[float, float, int]:
    cmd = [sys.executable, "-m", "gmmplat.cli", "check", "--star", str(folder / "particles.star"),
           "--map", str(folder / "consensus_map.mrc"), "--out", str(out), "--no-progress"]
    if model:
        cmd += ["--model", str(folder / "neutral_model.pdb")]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    inner = re.search(r"\(([\d.]+) s\)", proc.stdout)
    return wall, float(inner.group(1)) if inner else float("nan"), proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "gmmplat_bench_check"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    folder = Path(args.work) / "hinge128"
    simulate(folder)
    print("| reference | run | wall s (command) | check s | exit |\n|---|---|---|---|---|")
    for model in (False, True):
        for k in range(3):
            wall, inner, code = run_check(folder, Path(args.work) / "out", args.threads, model)
            print(f"| {'model' if model else 'map'} | {k + 1} | {wall:.1f} | {inner:.1f} | {code} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
