"""One step of the build's map refinement at the paper's scale: the GMM's 3D transform inside the
resolution sphere and its backward pass (gmmplat.neutral.refine.FourierSphere.gmm_transform).

Usage:  python benchmarks/bench_build.py [--gaussians 8000] [--box 256] [--resolution 3] [--threads 2]

Each setting runs in a fresh process so that its peak resident memory is its own; prints seconds of
the forward and the backward pass and the peak RSS.  The content does not matter for the cost:
random positions in a 120 Å cube, widths 0.7 Å, pixel size 1 Å.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(n: int, box: int, resolution: float, threads: int) -> dict:
    import torch

    from gmmplat.neutral.refine import FourierSphere

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    p = torch.rand(n, 5, generator=g)
    p[:, :3], p[:, 3], p[:, 4] = (p[:, :3] - 0.5) * 120, 1.0, 0.7
    sphere = FourierSphere(box, 1.0, resolution)
    q = p.clone().requires_grad_(True)
    t0 = time.perf_counter()
    G = sphere.gmm_transform(q)
    t1 = time.perf_counter()
    (sphere.weight * G.abs() ** 2).sum().backward()
    t2 = time.perf_counter()
    return {"gaussians": n, "box": box, "resolution_angstrom": resolution, "threads": threads,
            "forward_s": round(t1 - t0, 2), "backward_s": round(t2 - t1, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gaussians", default="2000,8000")
    ap.add_argument("--box", default="128,256")
    ap.add_argument("--resolution", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.resolution, args.threads)))
        return
    print("| Gaussians | box | forward | backward | peak RSS |\n|---|---|---|---|---|")
    for n in map(int, args.gaussians.split(",")):
        for box in map(int, args.box.split(",")):
            out = subprocess.run([sys.executable, __file__, "--one", str(n), str(box), "--resolution",
                                  str(args.resolution), "--threads", str(args.threads)],
                                 capture_output=True, text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {n} | {box} | {r['forward_s']} s | {r['backward_s']} s | {r['peak_rss_gb']} GB |", flush=True)


if __name__ == "__main__":
    main()
