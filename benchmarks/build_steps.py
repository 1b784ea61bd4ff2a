"""The build's map refinement on the large sample: loss against FSC for a few step settings.

Usage:  python benchmarks/build_steps.py DATA/tetramer [--gaussians 2000] [--steps 40] [--threads 2]

Builds the neutral GMM from the tetramer's model at 3 Å, then refines it against the consensus map
with the default settings, a 0.01 Å position step, and fixed widths; prints the loss before and
after and the FSC with the map (0.5 point, mean up to 3 Å) for each (docs/performance.md, "The
large case").
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="the tetramer's folder (gmmplat simulate tetramer)")
    ap.add_argument("--gaussians", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from gmmplat.io.models import read_model
    from gmmplat.io.mrc import read_map
    from gmmplat.neutral.from_model import build_from_model
    from gmmplat.neutral.refine import gmm_map_fsc, refine_gmm, scale_to_map

    torch.set_num_threads(args.threads)
    d = 3.0
    mp = read_map(args.data / "consensus_map.mrc")
    model = read_model(args.data / "neutral_model.pdb", selection="all")
    gmm, _ = scale_to_map(build_from_model(model, mp, d, args.gaussians, 0, None), mp, d)

    def fsc(g):
        f, c, r = gmm_map_fsc(g, mp)
        inside = (f > 0) & (f <= 1 / d)
        return r, float(c[inside].mean())

    r, m = fsc(gmm)
    print(f"| settings | loss before → after | FSC 0.5 | mean FSC to {d:g} Å | seconds |\n|---|---|---|---|---|")
    print(f"| built, not refined | | {r:.2f} Å | {m:.3f} | |")
    for name, kw in (("default", {}), ("position step 0.01 Å", {"lr_xyz_angstrom": 0.01}),
                     ("widths fixed", {"fit_sigma": False})):
        t0 = time.perf_counter()
        res = refine_gmm(gmm, mp, d, steps=args.steps, **kw)
        r, m = fsc(res.gmm)
        print(f"| {name} | {res.data_loss[0]:.4f} → {res.data_loss[-1]:.4f} | {r:.2f} Å | {m:.3f} | "
              f"{time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
