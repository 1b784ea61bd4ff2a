"""Fit the cost model (gmmplat.train.cost) to bench_scale.py rows and write its coefficients.

Usage:  python benchmarks/fit_cost.py ROWS.jsonl [--fixed-s S] [--parallel-fraction P]
                                     [--out gmmplat/train/cost_coefficients.json]

``--fixed-s``: a run's seconds outside the per-image work (start, data check, outputs), measured on
a small run; ``--parallel-fraction``: the Amdahl fraction from one setting timed at 1 and 2 threads.
Prints each row's measured and fitted per-image times.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gmmplat.train.cost import COEFFICIENTS_PATH, features, fit_coefficients, refine_features  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("rows", type=Path)
    ap.add_argument("--fixed-s", type=float, default=10.0)
    ap.add_argument("--parallel-fraction", type=float, default=0.8)
    ap.add_argument("--out", type=Path, default=COEFFICIENTS_PATH)
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["device"] == "cpu" and r["threads"] == 1 and "refine_calls" in r]
    fit = fit_coefficients(rows)
    memory = fit.pop("memory_mb")
    print(f"{'N':>6} {'box':>4} {'band':>5} | train meas/fit ms | val meas/fit | refine meas/fit | RSS meas/fit MB")
    for r in rows:
        def pred(kind, cells):
            return float(np.dot(fit[kind], features(kind, r["gaussians"], r["box"], cells, r["encoder_cells"])))
        train = pred("train", r["cells"]) + pred("encoder", r["cells"])
        val = pred("validation", r["cells"])
        call = r["refine_calls"][-1]
        ref = float(np.dot(fit["refine"], refine_features(call["n"], r["refine_anchors"], r["gaussians"], r["box"],
                                                          r["cells"])))
        print(f"{r['gaussians']:>6} {r['box']:>4} {r['band_angstrom']:>5g} | {1e3 * r['train_s']:7.2f} {1e3 * train:7.2f}"
              f" | {1e3 * r['validation_s']:6.2f} {1e3 * val:6.2f} | {call['seconds']:6.2f} {ref:6.2f} s/call")
    out = {"source": "benchmarks/bench_scale.py rows fitted by benchmarks/fit_cost.py; docs/performance.md",
           "units": "seconds per image (refine: per item), one CPU thread; memory in MB",
           "memory_mb": memory,
           "devices": {"cpu": {**fit, "fixed_s": args.fixed_s, "parallel_fraction": args.parallel_fraction}}}
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
