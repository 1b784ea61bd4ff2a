"""The end-to-end demo (``gmmplat demo``; ``python -m gmmplat.demo.run`` is the same command).

1. Simulates the sample datasets missing from ``--data`` (as ``gmmplat simulate all``), and
   again those simulated before the current origin convention.
2. Runs every ``notebooks/NN_*.ipynb`` in order with papermill (full setting, or
   ``--smoke`` for the tiny one), each reading the earlier ones' outputs under ``--out``;
   executed notebooks go to ``OUT/notebooks/`` with ``run_report.json`` (seconds per notebook).

Progress is printed per notebook with its time; a failing notebook stops the demo
with exit code 1 and a line naming it (its executed copy shows the failing cell).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from ..errors import InputError
from .notebooks import DATASETS, ensure_sample_data, list_notebooks, run_notebooks

DEFAULT_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def run_demo(data_dir: str | os.PathLike = "sample_data", out_dir: str | os.PathLike = "out",
             notebook_dir: str | os.PathLike = DEFAULT_NOTEBOOKS, smoke: bool = False) -> int:
    """Simulate the sample data if needed, run the notebooks; print a table; return the exit code
    (0 all ran, 1 a notebook failed).  Bad input raises :class:`~gmmplat.errors.GmmplatError`."""
    data, out = Path(data_dir).absolute(), Path(out_dir).absolute()
    if not list_notebooks(notebook_dir):  # refused before any simulation
        raise InputError(notebook_dir, "no notebooks named NN_*.ipynb")
    t0 = time.perf_counter()
    made = ensure_sample_data(data, DATASETS, smoke=smoke, progress=True)
    print(f"sample data: {data} ({'simulated ' + ', '.join(made) if made else 'already there'})", flush=True)
    results = run_notebooks(notebook_dir, out / "notebooks", parameters={"DATA_DIR": str(data), "OUT_DIR": str(out)},
                            smoke=smoke, progress=True)
    width = max(len(r.name) for r in results)
    print("\nnotebook".ljust(width + 1) + "  seconds  status")
    for r in results:
        print(f"{r.name.ljust(width)}  {r.seconds:7.1f}  {r.status}{'  ' + r.error if r.error else ''}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        f = failed[0]
        print(f"gmmplat demo: notebook {f.name} failed: {f.error}; see {f.output_path}", file=sys.stderr)
        return 1
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; outputs in {out}, executed notebooks in {out / 'notebooks'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m gmmplat.demo.run ARGS`` = ``gmmplat demo ARGS``."""
    from ..cli import main as cli_main

    return cli_main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
