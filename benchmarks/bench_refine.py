"""Cost of the latent refinement (gmmplat.refine.latent) against the size of the problem.

Usage:  python benchmarks/bench_refine.py [--quick] [--threads T] [--device cpu|cuda] [--allocator]

Synthetic particles (noise images with random poses and CTFs: the cost does not depend on
the content), a neutral GMM of N Gaussians and a decoder that moves every Gaussian along x
by the first latent coordinate (the decoder's own cost is negligible beside the
projections).  For each setting the table gives the particles refined per second, the
seconds for the whole set and the peak resident memory of the process.  One projection per
particle and anchor on the band: the cost grows with anchors × band cells × N.

``--poses``: also the local pose refinement (gmmplat.refine.poses, 20 steps and the Hessians of the
shrinkage) after each refinement, on the same band: its seconds and particles per second.

``--allocator``: the first two settings in fresh processes, with the allocator settings of
:mod:`gmmplat.allocator` (the default) and without (``GMMPLAT_KEEP_FREED_MEMORY=0``), alternating,
three times each: seconds and peak resident memory of both, and their ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import write_gmm, write_particles  # noqa: E402


def run(folder: Path, n_particles: int, box: int, n_gaussians: int, anchors: int, res: float | None,
        device: str, poses: bool = False) -> dict:
    import numpy as np
    import torch

    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.model.gmm import GMM
    from gmmplat.refine.latent import refine_latent

    apix = 2.0 if box <= 64 else 1.0
    sub = folder / f"b{box}_n{n_particles}"
    if not (sub / "particles.star").is_file():
        write_particles(sub, n_particles, box, apix)
    write_gmm(sub / f"gmm{n_gaussians}.npz", n_gaussians, box, apix)
    neutral = GMM.load(sub / f"gmm{n_gaussians}.npz")
    base = neutral.params.to(device)

    def decode(z):
        p = base[None].repeat(len(z), 1, 1)
        p[:, :, 0] += 3.0 * z[:, :1].to(device)
        return p

    data = ParticleDataset(sub / "particles.star", cache_mb=0)
    z = np.random.default_rng(0).standard_normal((n_particles, 4))
    t0 = time.perf_counter()
    refined = refine_latent(decode, data, z, n_anchors=anchors, high_res_angstrom=res, device=device)
    seconds = time.perf_counter() - t0
    extra = {}
    if poses:
        from gmmplat.refine.latent import refinement_band
        from gmmplat.refine.poses import refine_poses

        t0 = time.perf_counter()
        refine_poses(decode, data, z, refined.noise_per_ring, refinement_band(box, apix, res), steps=20,
                     device=device)
        extra = {"pose_seconds": time.perf_counter() - t0}
    return {**extra, "box": box, "N": n_gaussians, "particles": n_particles, "anchors": anchors,
            "band": "Nyquist" if res is None else f"{res:g} Å", "seconds": seconds,
            "particles_per_s": n_particles / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


SETTINGS = [(64, 217, 24, 10.0), (64, 217, 24, 15.0), (64, 217, 48, 10.0), (64, 2000, 24, 10.0),
            (128, 2000, 24, 10.0), (64, 217, 24, None)]


def compare_allocator(n: int, threads: int, device: str, repeats: int = 3) -> None:
    """Each of the first two settings in fresh processes, allocator settings on and off, alternating."""
    print(f"latent refinement, {n} particles, {threads} thread(s), device {device}; allocator settings of "
          f"gmmplat.allocator on / off (GMMPLAT_KEEP_FREED_MEMORY=0), {repeats} processes each, alternating")
    print("| box | N | anchors | band | seconds on | seconds off | off / on | peak RSS MB on | off |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2):
            rows = {"on": [], "off": []}
            for _ in range(repeats):
                for mode in ("on", "off"):
                    env = {k: v for k, v in os.environ.items() if k != "GMMPLAT_KEEP_FREED_MEMORY"}
                    if mode == "off":
                        env["GMMPLAT_KEEP_FREED_MEMORY"] = "0"
                    out = subprocess.run([sys.executable, __file__, "--row", str(i), "--folder", tmp, "--n", str(n),
                                          "--threads", str(threads), "--device", device],
                                         env=env, capture_output=True, text=True, check=True)
                    rows[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
            on, off = (sorted(r["seconds"] for r in rows[m]) for m in ("on", "off"))
            r = rows["on"][0]
            rss = {m: max(x["peak_rss_mb"] for x in rows[m]) for m in rows}
            print(f"| {r['box']} | {r['N']} | {r['anchors']} | {r['band']} | {' / '.join(f'{x:.1f}' for x in on)} | "
                  f"{' / '.join(f'{x:.1f}' for x in off)} | {off[len(off) // 2] / on[len(on) // 2]:.2f} (medians) | "
                  f"{rss['on']:.0f} | {rss['off']:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sets (a smoke run)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--allocator", action="store_true", help="time the allocator settings on and off")
    ap.add_argument("--poses", action="store_true", help="also time the pose refinement after each refinement")
    ap.add_argument("--row", type=int, help=argparse.SUPPRESS)  # one setting, printed as JSON (a child process)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    n = args.n or (200 if args.quick else 2000)
    if args.row is not None:
        box, N, K, res = SETTINGS[args.row]
        print(json.dumps(run(Path(args.folder), n, box, N, K, res, args.device)))
        return
    if args.allocator:
        compare_allocator(n, args.threads, args.device)
        return
    settings = SETTINGS[:2] if args.quick else SETTINGS
    print(f"latent refinement, {n} particles, {args.threads} thread(s), device {args.device}")
    poses = " pose refinement s |" if args.poses else ""
    print("| box | N | anchors | band | particles/s | seconds | peak RSS MB |" + poses)
    print("|---|---|---|---|---|---|---|" + ("---|" if args.poses else ""))
    with tempfile.TemporaryDirectory() as tmp:
        for box, N, K, res in settings:
            row = run(Path(tmp), n, box, N, K, res, args.device, poses=args.poses)
            pose = f" {row['pose_seconds']:.1f} |" if args.poses else ""
            print(f"| {row['box']} | {row['N']} | {row['anchors']} | {row['band']} | {row['particles_per_s']:.0f} | "
                  f"{row['seconds']:.1f} | {row['peak_rss_mb']:.0f} |{pose}", flush=True)


if __name__ == "__main__":
    main()
