"""Cost of the latent refinement (gmmplat.latent_refine) against the size of the problem.

Usage:  python benchmarks/bench_refine.py [--quick] [--threads T] [--device cpu|cuda]

Synthetic particles (noise images with random poses and CTFs: the cost does not depend on
the content), a neutral GMM of N Gaussians and a decoder that moves every Gaussian along x
by the first latent coordinate (the decoder's own cost is negligible beside the
projections).  For each setting the table gives the particles refined per second, the
seconds for the whole set and the peak resident memory of the process.  One projection per
particle and anchor on the band: the cost grows with anchors × band cells × N.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import write_gmm, write_particles  # noqa: E402


def run(folder: Path, n_particles: int, box: int, n_gaussians: int, anchors: int, res: float | None,
        device: str) -> dict:
    import numpy as np
    import torch

    from gmmplat.data import ParticleDataset
    from gmmplat.gmm import GMM
    from gmmplat.latent_refine import refine_latent

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
    refine_latent(decode, data, z, n_anchors=anchors, high_res_angstrom=res, device=device)
    seconds = time.perf_counter() - t0
    return {"box": box, "N": n_gaussians, "particles": n_particles, "anchors": anchors,
            "band": "Nyquist" if res is None else f"{res:g} Å", "seconds": seconds,
            "particles_per_s": n_particles / seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sets (a smoke run)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    n = 200 if args.quick else 2000
    settings = [(64, 217, 24, 10.0), (64, 217, 24, 15.0), (64, 217, 48, 10.0), (64, 2000, 24, 10.0),
                (128, 2000, 24, 10.0), (64, 217, 24, None)]
    if args.quick:
        settings = settings[:2]
    print(f"latent refinement, {n} particles, {args.threads} thread(s), device {args.device}")
    print("| box | N | anchors | band | particles/s | seconds | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for box, N, K, res in settings:
            row = run(Path(tmp), n, box, N, K, res, args.device)
            print(f"| {row['box']} | {row['N']} | {row['anchors']} | {row['band']} | {row['particles_per_s']:.0f} | "
                  f"{row['seconds']:.1f} | {row['peak_rss_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
