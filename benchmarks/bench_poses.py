"""The pose refinement's time by batch size, and where it goes (docs/performance.md, "Latent refinement").

Usage:  python benchmarks/bench_poses.py RUN [--n 768] [--batches 128,256,512,768] [--steps 20] [--profile]

RUN: a finished run of ``gmmplat train`` with a latent refinement (``refine.json`` holds the noise per
ring of its band).  Refines the poses of the run's first ``n`` items under its decoder at its latent,
from the stated poses, once per batch size, on one CPU thread, and prints the seconds and whether the
corrections equal the first batch size's.  ``--profile``: the ``torch.profiler`` table of one more
call at the first batch size (the first call of a process also pays a warm-up).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--n", type=int, default=768)
    ap.add_argument("--batches", default="128,256,512,768")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    import torch

    from gmmplat.analysis.latent import flatten_latent
    from gmmplat.analysis.runs import load_analysis_run
    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.refine.latent import refinement_band
    from gmmplat.refine.poses import refine_poses

    torch.set_num_threads(1)
    ar = load_analysis_run(args.run, args.run / "latent.npy")
    data = ar.run.config.data
    dataset = ParticleDataset(data.source(), invert_contrast=data.invert_contrast, symmetry=data.symmetry)
    refined = json.loads((args.run / "refine.json").read_text())
    band = refinement_band(dataset.box, dataset.pixel_size_angstrom, refined["options"]["high_res_angstrom"])
    noise = np.array([r["power"] for r in refined["noise_per_ring"]])
    n = min(args.n, len(dataset))
    z = flatten_latent(ar.latent)[:n].astype(np.float32)

    class First:  # the run's first n items, as refine_poses reads a dataset
        def __len__(self):
            return n

        def get_batch(self, items):
            return dataset.get_batch(np.asarray(items))

    def refine(batch_size):
        return refine_poses(ar.run.model.decode, First(), z, noise, band, steps=args.steps, batch_size=batch_size)

    first = None
    print(f"{n} items, {args.steps} steps, one thread")
    print("| batch | seconds | corrections as the first batch size's |\n|---|---|---|")
    for b in (int(x) for x in args.batches.split(",")):
        t = time.perf_counter()
        poses = refine(b)
        seconds = time.perf_counter() - t
        first = poses if first is None else first
        same = np.allclose(poses.rotvec_rad, first.rotvec_rad, atol=1e-6) and np.allclose(
            poses.shift_angstrom, first.shift_angstrom, atol=1e-5)
        print(f"| {b} | {seconds:.2f} | {'yes' if same else 'no'} |", flush=True)
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            refine(int(args.batches.split(",")[0]))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
