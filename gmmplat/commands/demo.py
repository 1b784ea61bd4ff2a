"""``gmmplat demo``: simulate the sample data and run the notebook series headless.

Examples::

    gmmplat demo                          # sample_data/ and out/ (what `make demo` runs)
    gmmplat demo --smoke --out out_smoke  # tiny datasets, SMOKE = True: a quick check

See :mod:`gmmplat.demo.run` and docs/notebooks.md.
"""
from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..demo.run import DEFAULT_NOTEBOOKS

    p.add_argument("--data", default="sample_data",
                   help="sample data folder: missing or stale datasets are simulated there (default sample_data)")
    p.add_argument("--out", default="out", help="output folder: GMMs, runs, analysis, executed notebooks (default out)")
    p.add_argument("--notebooks", default=str(DEFAULT_NOTEBOOKS), help="folder of the NN_*.ipynb notebooks")
    p.add_argument("--smoke", action="store_true", help="tiny datasets and SMOKE = True (a quick check)")


def run(args: argparse.Namespace) -> int:
    from ..demo.run import run_demo

    return run_demo(args.data, args.out, args.notebooks, smoke=args.smoke)
