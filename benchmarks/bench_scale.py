"""Per-image cost of training, validation and latent refinement from small to paper-sized problems.

Usage:  python benchmarks/bench_scale.py [--quick] [--threads T] [--gaussians 200,2000] [--boxes 64,128]
                                         [--bands 15,10,3] [--out rows.jsonl] [--device cpu|cuda]

For every (Gaussians N, box M, band) of the grid, a fresh process (so its peak resident memory is
its own) builds the ``free`` preset's round (gradient encoder, free decoder, ring-weighted L2 loss,
elastic network) with the package's own builders on a random neutral GMM of N Gaussians at
1 Å/px, and times, per image (batch 32, after one warm-up step, median of the steps):

* one training step in parts: encoder, decoders, projector, loss, regularizers, backward, Adam;
* validation (no gradients: encoder, decoders, projector, loss);
* latent refinement (:func:`gmmplat.refine.latent.refine_latent`, 24 anchors, on the same band), one
  call on ``--refine-particles`` items and one on three times as many (the cost model separates the
  per-call part from the per-item one).

Images are noise with random poses and CTFs: the cost does not depend on their content.  ``cells``
is the band's rectangle of rfft cells (``len(ky) · len(kx)``), what the separable projector works
on.  A setting whose projector tensors would exceed ``--max-gb`` is skipped (reported as such).
Prints a table and appends one JSON line per setting to ``--out``.  The cost model
(:mod:`gmmplat.train.cost`, docs/performance.md) is fitted to these lines.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import write_gmm, write_particles  # noqa: E402

APIX = 1.0
BATCH = 32
PARTS = ("encoder", "decoders", "projector", "loss", "regularizers", "backward", "optimizer")
QUICK = [(200, 64, 15.0), (2000, 64, 10.0), (2000, 128, 10.0), (2000, 128, 3.0), (8000, 128, 10.0),
         (8000, 192, 3.0)]


def _cells(box: int, band: float) -> tuple[int, int]:
    from gmmplat.physics.fourier import Band

    b = Band(box, APIX, band)
    return len(b.ky_index) * len(b.kx_index), int(b.in_band.sum())


def measure(folder: Path, n_gaussians: int, box: int, band: float, steps: int, n_refine: int, device: str) -> dict:
    """One setting, in this process: the per-image seconds of each part and the peak RSS."""
    import numpy as np
    import torch

    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.model.gmm import GMM
    from gmmplat.refine.latent import refine_latent
    from gmmplat.train.builder import build_model_for_round
    from gmmplat.train.config import RunConfig
    from gmmplat.train.presets import preset_dict

    n_particles = BATCH * (steps + 1)
    write_particles(folder, n_particles, box, APIX)
    write_gmm(folder / "gmm.npz", n_gaussians, box, APIX)
    neutral = GMM.load(folder / "gmm.npz")
    d = preset_dict("free", neutral)
    d["rounds"] = d["rounds"][:1]
    d["rounds"][0].update(high_res_angstrom=band, batch_size=BATCH)
    d["refine"] = {"anchors": 24, "high_res_angstrom": band}  # timed below, without cycles
    config = RunConfig.from_dict(d)
    model, encoder, decoders, s, params = build_model_for_round(config, neutral, 0)
    model.to(device)
    optimizer = torch.optim.Adam(params, lr=1e-4)
    data = ParticleDataset(folder / "particles.star", cache_mb=0)
    batches = [np.arange(i * BATCH, (i + 1) * BATCH) for i in range(steps + 1)]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def clock(t0):
        sync()
        return time.perf_counter() - t0

    times = {p: [] for p in PARTS}
    for k, batch in enumerate(data.loader(batches)):
        batch = batch.to(device)
        t = {}
        t0 = time.perf_counter()
        z = model.encoder(batch)
        t["encoder"], t0 = clock(t0), time.perf_counter()
        p = model.params_from_z(z + config.latent_noise_std * torch.randn_like(z))
        t["decoders"], t0 = clock(t0), time.perf_counter()
        pred = s.image_model.predict(p, batch)
        t["projector"], t0 = clock(t0), time.perf_counter()
        total = s.loss(pred, s.image_model.observe(batch)).mean() + model.latent_penalty_term(z)
        t["loss"], t0 = clock(t0), time.perf_counter()
        for reg in s.regularizers:
            total = total + reg(p)
        t["regularizers"], t0 = clock(t0), time.perf_counter()
        total.backward()
        t["backward"], t0 = clock(t0), time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t["optimizer"] = clock(t0)
        if k > 0:  # the first step warms up (allocations, one-off caches)
            for key, v in t.items():
                times[key].append(v / BATCH)
    parts = {key: statistics.median(v) for key, v in times.items()}
    model.eval()
    val = []
    with torch.no_grad():
        for batch in data.loader(batches[:2]):
            batch = batch.to(device)
            t0 = time.perf_counter()
            pv, _ = model(batch, training=False)
            s.loss(s.image_model.predict(pv, batch), s.image_model.observe(batch))
            val.append(clock(t0) / BATCH)

    def decode(zz):
        with torch.no_grad():
            return model.params_from_z(torch.as_tensor(zz, dtype=torch.float32, device=device))

    calls = []
    for n in (n_refine, 3 * n_refine):  # own particle sets: the refinement's noise subset is min(n, 1000)
        write_particles(folder / f"refine{n}", n, box, APIX)
        part = ParticleDataset(folder / f"refine{n}" / "particles.star", cache_mb=0)
        z0 = np.random.default_rng(0).standard_normal((n, config.latent_dim)) * 0.3
        t0 = time.perf_counter()
        refine_latent(decode, part, z0, n_anchors=24, high_res_angstrom=band, device=device)
        calls.append({"n": n, "seconds": clock(t0)})
    refine_s = calls[-1]["seconds"] / calls[-1]["n"]
    rect, in_band = _cells(box, band)
    enc_rect, _ = _cells(box, config.encoder.options["input_res_angstrom"])
    return {"gaussians": n_gaussians, "box": box, "band_angstrom": band, "pixel_size_angstrom": APIX,
            "cells": rect, "cells_in_band": in_band, "encoder_cells": enc_rect, "batch": BATCH,
            "threads": torch.get_num_threads(), "device": device,
            **{f"{k}_s": v for k, v in parts.items()},
            "train_s": sum(parts.values()), "validation_s": val[-1], "refine_s": refine_s, "refine_anchors": 24,
            "refine_calls": calls,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _projector_gb(n: int, box: int, band: float) -> float:
    """Rough size of the separable projector's per-batch tensors and their gradients (complex64, ×4)."""
    from gmmplat.physics.fourier import Band

    b = Band(box, APIX, band)
    return 4 * BATCH * n * (len(b.ky_index) + len(b.kx_index)) * 8 / 2**30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"the settings {QUICK} only")
    ap.add_argument("--gaussians", default="200,2000,8000,20000")
    ap.add_argument("--boxes", default="64,128,256,320")
    ap.add_argument("--bands", default="15,10,3", help="high-resolution limits, Å")
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per setting (after a warm-up)")
    ap.add_argument("--refine-particles", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-gb", type=float, default=6.0, help="skip settings whose projector tensors exceed this")
    ap.add_argument("--out", type=Path, default=Path("bench_scale.jsonl"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        n, box, band = json.loads(args.child)
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(measure(Path(tmp), n, box, band, args.steps, args.refine_particles, args.device)))
        return
    if args.quick:
        grid = QUICK
    else:
        grid = [(int(n), int(b), float(r)) for n in args.gaussians.split(",") for b in args.boxes.split(",")
                for r in args.bands.split(",")]
    head = (f"{'N':>6} {'box':>4} {'band':>5} {'cells':>6} | {'enc':>6} {'dec':>6} {'proj':>6} {'loss':>6} "
            f"{'reg':>6} {'back':>6} {'adam':>6} | {'train':>7} {'val':>7} {'refine':>7} ms/image | {'RSS MB':>7}")
    print(head)
    for n, box, band in grid:
        if band < 2 * APIX:
            continue
        if _projector_gb(n, box, band) > args.max_gb:
            print(f"{n:>6} {box:>4} {band:>5g}  skipped: projector tensors ~{_projector_gb(n, box, band):.1f} GB")
            continue
        cmd = [sys.executable, __file__, "--child", json.dumps([n, box, band]), "--threads", str(args.threads),
               "--steps", str(args.steps), "--refine-particles", str(args.refine_particles), "--device", args.device]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            print(f"{n:>6} {box:>4} {band:>5g}  failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        ms = {k: 1e3 * row[f"{k}_s"] for k in PARTS}
        print(f"{n:>6} {box:>4} {band:>5g} {row['cells']:>6} | " + " ".join(f"{ms[k]:>6.2f}" for k in PARTS)
              + f" | {1e3 * row['train_s']:>7.2f} {1e3 * row['validation_s']:>7.2f} {1e3 * row['refine_s']:>7.2f}"
              + f" ms/image | {row['peak_rss_mb']:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
