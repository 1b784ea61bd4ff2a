"""Training throughput and memory of the particle stream.

Usage:  python benchmarks/bench_train.py [--quick] [--threads T]

1. **Throughput**: box 64 at 2 Å/px, a neutral GMM of N = 2000 Gaussians, a free
   decoder (positions + amplitudes of every Gaussian), FRC loss, batch 32; the image
   encoder and the gradient encoder (which projects the neutral GMM once more per
   particle for its input), over the full band (Nyquist, 4 Å) and at 15 Å (the
   presets' first round).  One epoch over a synthetic particle set (noise images;
   the numbers do not depend on the content); prints images/s of the training pass
   (forward, backward, Adam) and of the validation pass.
2. **Memory**: for two dataset sizes (the larger 4x the smaller, both several
   times larger than the 16 MB image cache), a fresh process streams one epoch of
   shuffled batches exactly as the trainer does and reports its peak resident set
   size (``ru_maxrss``) and the resident size at the end.  The stacks are
   memory-mapped; their pages are released after every 64 MB of reading, so the
   resident size must not grow with the number of particles (only the per-particle
   metadata, ~0.3 kB per particle, does).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 2**20


def write_particles(folder: Path, n: int, box: int, apix: float, seed: int = 0) -> Path:
    """A STAR file + stacks of ``n`` noise images (1000 per stack) with random poses and CTFs."""
    import mrcfile
    import numpy as np
    import pandas as pd

    from gmmplat.io.star import TABLE_COLUMNS, write_particle_star

    g = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    stacks, index = [], []
    for s, start in enumerate(range(0, n, 1000)):
        k = min(1000, n - start)
        path = folder / f"stack_{s:03d}.mrcs"
        with mrcfile.new(path, overwrite=True) as m:
            m.set_data(g.standard_normal((k, box, box), dtype=np.float32))
            m.voxel_size = apix
        stacks += [str(path)] * k
        index += list(range(k))
    table = pd.DataFrame({
        "stack_path": stacks, "image_index": index, "rot_deg": g.uniform(-180, 180, n),
        "tilt_deg": g.uniform(0, 180, n), "psi_deg": g.uniform(-180, 180, n), "shift_x_angstrom": g.normal(0, 2, n),
        "shift_y_angstrom": g.normal(0, 2, n), "defocus_u_angstrom": g.uniform(8000, 25000, n),
        "defocus_v_angstrom": 0.0, "defocus_angle_deg": g.uniform(0, 180, n), "voltage_kv": 300.0, "cs_mm": 2.7,
        "amplitude_contrast": 0.1, "phase_shift_deg": 0.0, "bfactor": 0.0, "pixel_size_angstrom": apix,
        "box_size": float(box), "optics_group": 1,
    })
    table["defocus_v_angstrom"] = table["defocus_u_angstrom"] - 200.0
    star = folder / "particles.star"
    write_particle_star(star, table[TABLE_COLUMNS])
    return star


def write_gmm(path: Path, n: int, box: int, apix: float) -> None:
    import numpy as np

    from gmmplat.model.gmm import GMM

    g = np.random.default_rng(1)
    xyz = g.normal(0, box * apix / 8, size=(n, 3))
    GMM.from_arrays(xyz, 1.0, 2.0, box, apix).save(path)


def throughput(folder: Path, n_particles: int, n_gaussians: int, threads: int, encoder: str,
               high_res_angstrom: float | None) -> dict:
    import torch

    from gmmplat.train import RunConfig, Trainer

    torch.set_num_threads(threads)
    box, apix = 64, 2.0
    star, gmm = folder / "tp" / "particles.star", folder / "tp" / "gmm.npz"
    if not star.exists():
        write_particles(folder / "tp", n_particles, box, apix)
        write_gmm(gmm, n_gaussians, box, apix)
    cfg = RunConfig.from_dict({
        "latent_dim": 4, "validation_fraction": 0.1,
        "encoder": {"kind": encoder}, "decoders": {"free": {"kind": "free"}},
        "rounds": [{"decoders": ["free"], "epochs": 1, "batch_size": 32, "learning_rate": 1e-4,
                    "high_res_angstrom": high_res_angstrom}],
        "data": {"star": str(star), "gmm": str(gmm)},
    })
    out = folder / f"tp_{encoder}_{high_res_angstrom}"
    row = Trainer(cfg, out, progress=False).run().history[-1]
    return {"particles": n_particles, "gaussians": n_gaussians, "threads": threads, "encoder": encoder,
            "band": f"{high_res_angstrom:g} Å" if high_res_angstrom else "Nyquist (4 Å)",
            "train_images_per_s": row["train_images_per_s"], "val_images_per_s": row["val_images_per_s"],
            "epoch_s": row["seconds"]}


def proc_status() -> dict:
    """VmHWM (peak RSS of this process image), VmRSS, RssAnon, RssFile in MB (/proc/self/status)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
                out[key] = int(value.split()[0]) / 1024
    return out


def rss_child(star: str, cache_mb: float) -> None:
    """Stream one shuffled epoch like the trainer; print peak and final RSS as JSON."""
    import numpy as np
    import torch  # noqa: F401  (the trainer's imports, so the baseline includes them)

    from gmmplat.io.dataset import ParticleDataset, batch_order

    before = proc_status()["VmRSS"]
    ds = ParticleDataset(star, cache_mb=cache_mb)
    train, _ = ds.split(0.1, 0)
    t0 = time.perf_counter()
    checksum = 0.0
    for batch in ds.loader(batch_order(train, 32, (0, 1, 0, 0))):
        checksum += float(batch.images[:, 0, 0].sum())
    seconds = time.perf_counter() - t0
    st = proc_status()
    print(json.dumps({"particles": ds.n_particles, "stack_mb": ds.n_particles * ds.box**2 * 4 / MB,
                      "cache_mb": cache_mb, "peak_rss_mb": st["VmHWM"], "rss_after_imports_mb": before,
                      "final_rss_mb": st["VmRSS"], "final_anon_mb": st["RssAnon"], "final_file_mb": st["RssFile"],
                      "read_images_per_s": len(train) / seconds,
                      "cached_images": len(ds._cache), "checksum": float(np.float32(checksum))}))


def memory(folder: Path, sizes: list[int], cache_mb: float) -> list[dict]:
    out = []
    for n in sizes:
        star = write_particles(folder / f"rss_{n}", n, 64, 2.0, seed=n)
        proc = subprocess.run([sys.executable, __file__, "--rss-child", str(star), "--cache-mb", str(cache_mb)],
                              capture_output=True, text=True, check=True)
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sets (a smoke run)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rss-child", help=argparse.SUPPRESS)
    ap.add_argument("--cache-mb", type=float, default=16.0)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.cache_mb)
        return
    n_tp, sizes = (160, [2000, 8000]) if args.quick else (640, [5000, 20000])
    cases = [("image", None), ("gradient", None), ("gradient", 15.0)]
    with tempfile.TemporaryDirectory() as tmp:
        tps = [throughput(Path(tmp), n_tp, 2000, args.threads, enc, res) for enc, res in cases]
        mem = memory(Path(tmp), sizes, args.cache_mb)
    print(f"\nTraining throughput, CPU, {args.threads} threads: box 64, N = 2000 Gaussians, free decoder, "
          f"FRC, batch 32, one epoch of {n_tp} particles (10% validation)")
    print(f"{'encoder':>9} {'band':>14} {'train images/s':>15} {'validation images/s':>20} {'epoch s':>8}")
    for tp in tps:
        print(f"{tp['encoder']:>9} {tp['band']:>14} {tp['train_images_per_s']:15.1f} {tp['val_images_per_s']:20.1f} "
              f"{tp['epoch_s']:8.1f}")
    print(f"\nParticle stream, one shuffled epoch, image cache {args.cache_mb:g} MB (box 64)")
    print(f"{'particles':>10} {'stacks MB':>10} {'RSS after imports':>18} {'peak RSS':>9} {'final RSS':>10} "
          f"{'(anon + file)':>14} {'read images/s':>14}   (MB)")
    for m in mem:
        print(f"{m['particles']:10d} {m['stack_mb']:10.0f} {m['rss_after_imports_mb']:18.0f} {m['peak_rss_mb']:9.0f} "
              f"{m['final_rss_mb']:10.0f} {m['final_anon_mb']:6.0f} + {m['final_file_mb']:5.0f} "
              f"{m['read_images_per_s']:14.0f}")


if __name__ == "__main__":
    main()
