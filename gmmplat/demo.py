"""The end-to-end demo: ``python -m gmmplat.demo --data sample_data --out out``.

1. Simulates the sample datasets missing from ``--data`` (as ``gmmplat simulate all``).
2. Runs every ``notebooks/NN_*.ipynb`` in order with papermill (full setting, or
   ``--smoke`` for the tiny one), each reading the earlier ones' outputs under ``--out``;
   executed notebooks go to ``OUT/notebooks/`` with ``run_report.json`` (seconds per notebook).

Progress is printed per notebook with its time; a failing notebook stops the demo
with exit code 1 and a line naming it (its executed copy shows the failing cell).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .errors import GmmplatError
from .notebooks import DATASETS, ensure_sample_data, run_notebooks

DEFAULT_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gmmplat.demo", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="sample_data", help="sample data folder (simulated there if missing)")
    p.add_argument("--out", default="out", help="output folder: GMMs, runs, analysis, executed notebooks")
    p.add_argument("--notebooks", default=str(DEFAULT_NOTEBOOKS), help="folder of the NN_*.ipynb notebooks")
    p.add_argument("--smoke", action="store_true", help="tiny datasets and SMOKE = True (a quick check)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    data, out = Path(args.data).absolute(), Path(args.out).absolute()
    t0 = time.perf_counter()
    try:
        made = ensure_sample_data(data, DATASETS, smoke=args.smoke, progress=True)
        print(f"sample data: {data} ({'simulated ' + ', '.join(made) if made else 'already there'})", flush=True)
        results = run_notebooks(args.notebooks, out / "notebooks", parameters={"DATA_DIR": str(data), "OUT_DIR": str(out)},
                                smoke=args.smoke, progress=True)
    except GmmplatError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("demo: interrupted", file=sys.stderr)
        return 130
    width = max(len(r.name) for r in results)
    print("\nnotebook".ljust(width + 1) + "  seconds  status")
    for r in results:
        print(f"{r.name.ljust(width)}  {r.seconds:7.1f}  {r.status}{'  ' + r.error if r.error else ''}")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        f = failed[0]
        print(f"demo: notebook {f.name} failed: {f.error}; see {f.output_path}", file=sys.stderr)
        return 1
    print(f"demo finished in {time.perf_counter() - t0:.0f} s; outputs in {out}, executed notebooks in {out / 'notebooks'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
