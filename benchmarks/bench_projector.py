"""Separable vs dense Fourier projector: forward+backward time and peak memory.

Usage:  python benchmarks/bench_projector.py [--quick] [--factors]

For N ∈ {2000, 8000} Gaussians, M ∈ {64, 128} px and B = 32 particles (full
band, CTF applied) it prints, per projector, the forward+backward wall time and
the peak resident memory added by one step (each case in a fresh subprocess,
`ru_maxrss` minus the resident size before the step), and the separable
projector's time as a ratio to a bare batched complex matrix product
(Y (B,Ky,N) @ X (B,N,Kx), forward + backward) of the same shapes: the limit the
machine's matmul throughput sets.  Where the dense projector's N·Ky·Kx tensors
would not fit in memory it runs at a smaller batch and both its time and memory
are scaled linearly to B = 32 (marked "*").

``--factors``: the separable projector's ways of forming a factor, in one process on the
band-limited shapes of training and refinement (box 64, 2 Å pixels, 128 particles): directly, a
cosine and a sine per frequency times the envelope, against the fine × coarse phase tables times
the envelope (``gmmplat.projectors.separable.DIRECT_MAX``) and against one ``torch.polar`` per
frequency (the direct path before), forward alone and forward + backward.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

GIB = 1024**3


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_case(kind: str, n: int, box: int, batch: int, repeats: int) -> dict:
    import torch

    from gmmplat.physics.ctf import CTFParams, ctf_rfft
    from gmmplat.physics.fourier import Band
    from gmmplat.physics.geometry import random_rotations
    from gmmplat.physics.image_model import ImageModel
    from gmmplat.projectors import PROJECTORS

    torch.manual_seed(0)
    apix = 1.0
    band = Band(box, apix)
    g = torch.Generator().manual_seed(0)
    params = torch.cat(
        [(torch.rand(batch, n, 3, generator=g) - 0.5) * box * apix * 0.5,
         torch.rand(batch, n, 1, generator=g) + 0.5, torch.full((batch, n, 1), 2.0)], dim=-1)
    rot = random_rotations(batch, g).float()
    shifts = torch.zeros(batch, 2)
    ctf = ctf_rfft(CTFParams.from_values(batch, defocus_u_angstrom=15000.0, defocus_v_angstrom=14000.0,
                                         defocus_angle_deg=10.0, voltage_kv=300.0, cs_mm=2.7,
                                         amplitude_contrast=0.1), box, apix, band)
    Ky, Kx = band.shape
    if kind == "matmul":
        Y = torch.randn(batch, Ky, n, dtype=torch.complex64, requires_grad=True)
        X = torch.randn(batch, n, Kx, dtype=torch.complex64, requires_grad=True)
        step = lambda: torch.bmm(Y, X).abs().sum().backward()  # noqa: E731
    else:
        image_model = ImageModel(band, PROJECTORS.build(kind, band))
        p = params.clone().requires_grad_(True)
        step = lambda: image_model.project(p, rot, shifts, ctf).abs().sum().backward()  # noqa: E731
    before = rss_bytes()
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    times = [first]
    for _ in range(repeats - 1):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"time_s": min(times), "peak_bytes": max(peak, 0)}


def in_subprocess(kind, n, box, batch, repeats) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", json.dumps([kind, n, box, batch, repeats])],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def dense_batch(n, box, batch, budget_bytes):
    per_particle = n * box * (box // 2 + 1) * 8 * 6  # complex64 N·Ky·Kx tensors kept for backward
    b = batch
    while b > 1 and b * per_particle > budget_bytes:
        b //= 2
    return b


def _polar_phasor(angle, modulus=None):
    """The direct factor as it was formed before: one ``torch.polar`` (for comparison)."""
    import torch

    return torch.polar(torch.ones_like(angle) if modulus is None else modulus, angle)


def factor_paths(repeats: int = 5) -> None:
    import torch

    import gmmplat.projectors.separable as sp
    from gmmplat.physics.fourier import Band
    from gmmplat.physics.geometry import random_rotations

    default, phasor = sp.DIRECT_MAX, sp._phasor
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B = 128, box 64, 2 Å pixels; "
          f"best of {repeats}; ms forward (forward + backward)")
    paths = (("tables", 0, phasor), ("direct", 10**6, phasor), ("polar", 10**6, _polar_phasor))
    head = ("N", "band Å", "Kx × Ky", *(f"{name} ms" for name, _, _ in paths), "tables/direct", "polar/direct")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    g = torch.Generator().manual_seed(0)
    for n, res in ((217, 15.0), (217, 10.0), (2000, 10.0), (217, 6.0), (217, 4.0)):
        band = Band(64, 2.0, res)
        params = torch.cat([(torch.rand(128, n, 3, generator=g) - 0.5) * 64.0, torch.rand(128, n, 1, generator=g) + 0.5,
                            torch.full((128, n, 1), 2.5)], dim=-1)
        rot, shifts = random_rotations(128, g).float(), torch.zeros(128, 2)
        proj = sp.FourierSeparableProjector(band)
        Ky, Kx = band.shape
        fwd, both = {}, {}
        try:
            for name, limit, form in paths:
                sp.DIRECT_MAX, sp._phasor = limit, form
                p = params.clone().requires_grad_(True)
                for store, step in ((fwd, lambda: proj(params, rot)),
                                    (both, lambda: proj(p, rot).abs().sum().backward())):
                    times = []
                    for _ in range(repeats):
                        t0 = time.perf_counter()
                        step()
                        times.append(time.perf_counter() - t0)
                    store[name] = min(times)
        finally:
            sp.DIRECT_MAX, sp._phasor = default, phasor
        row = [n, f"{res:g}", f"{Kx} × {Ky}"]
        row += [f"{fwd[name] * 1e3:.1f} ({both[name] * 1e3:.1f})" for name, _, _ in paths]
        row += [f"{fwd['tables'] / fwd['direct']:.2f} ({both['tables'] / both['direct']:.2f})",
                f"{fwd['polar'] / fwd['direct']:.2f} ({both['polar'] / both['direct']:.2f})"]
        print("| " + " | ".join(str(v) for v in row) + " |", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case")
    ap.add_argument("--quick", action="store_true", help="small sizes only (smoke run)")
    ap.add_argument("--dense-budget-gib", type=float, default=6.0)
    ap.add_argument("--factors", action="store_true", help="only the factor paths' table (see the docstring)")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(*json.loads(args.case))))
        return
    if args.factors:
        factor_paths()
        return
    import torch

    sizes = [(200, 32)] if args.quick else [(2000, 64), (2000, 128), (8000, 64), (8000, 128)]
    B, repeats = (4, 2) if args.quick else (32, 3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B = {B}, full band, CTF on")
    head = ("N", "M", "separable s", "dense s", "dense/sep time", "separable MiB", "dense MiB",
            "dense/sep mem", "matmul s", "sep/matmul")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, box in sizes:
        sep = in_subprocess("separable", n, box, B, repeats)
        mm = in_subprocess("matmul", n, box, B, repeats)
        b = dense_batch(n, box, B, args.dense_budget_gib * GIB)
        den = in_subprocess("dense", n, box, b, max(1, repeats - 1))
        scale = B / b
        mark = "" if b == B else f"* (B={b}, ×{scale:g})"
        dt, dm = den["time_s"] * scale, den["peak_bytes"] * scale
        row = (n, box, f"{sep['time_s']:.3f}", f"{dt:.3f}{mark}", f"{dt / sep['time_s']:.1f}",
               f"{sep['peak_bytes'] / 2**20:.0f}", f"{dm / 2**20:.0f}{mark}",
               f"{dm / max(sep['peak_bytes'], 1):.0f}", f"{mm['time_s']:.3f}", f"{sep['time_s'] / mm['time_s']:.2f}")
        print("| " + " | ".join(str(v) for v in row) + " |", flush=True)


if __name__ == "__main__":
    main()
