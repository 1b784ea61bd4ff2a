"""Reduced precision on this CPU: the projector's batched product in float32, bfloat16 and float16.

Usage:  python benchmarks/bench_precision.py [--gaussians 8000] [--cells 171] [--batch 32] [--threads 2]

The separable projector's work is a batched product of a (batch, cells, N) by a (batch, N, cells)
factor (docs/performance.md, "The large case"); this times that product alone in each precision, so
that a lower precision is tried only where the hardware runs it faster.
"""
from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussians", type=int, default=8000)
    ap.add_argument("--cells", type=int, default=171, help="rows of one factor (the 3 Å band at box 256)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"| dtype | ms per product | × float32 |  ({args.batch} × {args.cells} × {args.gaussians}, {args.threads} threads)")
    print("|---|---|---|")
    base = None
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        a = torch.randn(args.batch, args.cells, args.gaussians).to(dtype)
        b = torch.randn(args.batch, args.gaussians, args.cells).to(dtype)
        torch.bmm(a, b)  # warm-up
        start = time.perf_counter()
        for _ in range(args.repeats):
            torch.bmm(a, b)
        ms = 1e3 * (time.perf_counter() - start) / args.repeats
        base = base or ms
        print(f"| {str(dtype).removeprefix('torch.')} | {ms:.1f} | {ms / base:.1f} |")


if __name__ == "__main__":
    main()
