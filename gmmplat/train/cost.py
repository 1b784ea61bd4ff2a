"""A run's wall time and peak memory, predicted before any work from its size and configuration.

Per-image seconds, fitted to ``benchmarks/bench_scale.py`` rows (one CPU thread; the table, the fit and
measured-against-predicted runs are in docs/performance.md).  With ``N`` Gaussians, ``C`` the band's
rectangle of rfft cells (what the separable projector works on), ``C_enc`` the encoder's input band's
and ``M`` the box:

* training step without the encoder: ``t0 + t1·N·C + t2·M²``;
* the (gradient) encoder: ``e0 + e1·N·C_enc + e2·M²`` (not in the refinement cycles: a table there);
* validation: ``v0 + v1·N·C + v2·N·C_enc + v3·M²``;
* latent refinement, per call on ``n`` items: ``r0 + n_p·(r1·anchors·N·C_ref + r2·M²)``, with
  ``n_p = n + min(n, 1000)`` the items it projects (the noise estimate's subset goes through first);
  a pose refinement of ``s`` steps (``refine.pose_steps``; the cycles ``posed_cycles`` names) is counted as
  ``s + 10`` projector passes with gradients per item (10: the Hessian's differences), ``t1·N·C_ref`` each;
  the last refinement's pose samples (``refine.pose_samples``) are not counted: the data decide whether
  they run (not on exact poses); where they do they add ``8 (J − 1)`` anchors' projections to that
  refinement (nor do the sample runs, which stop after the first cycle);
* peak memory (MB): ``m0 + m1·B·N·(Ky + Kx)·10⁻⁶`` plus the image cache and ``~1 kB`` per particle.

Threads divide the seconds by an Amdahl speed-up ``1 / ((1 − p) + p / T)``, ``p`` measured.  The
coefficients live in ``cost_coefficients.json`` beside this module (:func:`fit_coefficients`
writes them from benchmark rows).  Devices without measured coefficients get no time estimate.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..physics.fourier import Band
from .schedule import cycle_rounds, posed_cycles

COEFFICIENTS_PATH = Path(__file__).with_name("cost_coefficients.json")  # docs/performance.md, "Cost model"
_METADATA_MB_PER_PARTICLE = 1e-3
NOISE_PARTICLES = 1000  # the refinement's noise subset (gmmplat.refine.latent.refine_latent)
HESSIAN_PASSES = 10  # gradient evaluations of the pose refinement's Hessian (gmmplat.refine.poses)


def refined_items(n: int) -> int:
    """Items a latent refinement of ``n`` items projects: the noise subset, then all of them."""
    return int(n) + min(int(n), NOISE_PARTICLES)


def band_rect(box: int, pixel_size_angstrom: float, high_res_angstrom: float | None) -> tuple[int, int]:
    """``(Ky, Kx)``: the rows and columns of the rfft grid a band of ``high_res_angstrom`` keeps."""
    b = Band(int(box), float(pixel_size_angstrom), high_res_angstrom)
    return len(b.ky_index), len(b.kx_index)


def features(kind: str, n: int, box: int, cells: float, encoder_cells: float = 0.0) -> np.ndarray:
    """The formula's terms for ``kind`` (``train``, ``encoder``, ``validation``: per image); ``refine``'s are
    per call (:func:`refine_features`)."""
    if kind == "train":
        return np.array([1.0, n * cells, box * box])
    if kind == "encoder":
        return np.array([1.0, n * encoder_cells, box * box])
    if kind == "validation":
        return np.array([1.0, n * cells, n * encoder_cells, box * box])
    raise ValueError(kind)


def load_coefficients(path: str | Path = COEFFICIENTS_PATH) -> dict:
    return json.loads(Path(path).read_text())


def refine_features(n_items: int, anchors: int, n_gaussians: int, box: int, cells: float) -> np.ndarray:
    """Terms ``[1, n_p·anchors·N·C_ref, n_p·M²]`` of one latent refinement call on ``n_items`` items."""
    p = refined_items(n_items)
    return np.array([1.0, p * anchors * n_gaussians * cells, p * box * box])


def fit_coefficients(rows: list[dict]) -> dict:
    """Non-negative least squares on relative errors (the times span four orders of magnitude).

    ``refine`` is fitted to every row's timed calls (``refine_calls``: ``{"n", "seconds"}``, at two or more
    sizes, so the per-call part separates from the per-item one)."""
    from scipy.optimize import nnls

    def solve(X, y):
        X, y = np.array(X), np.array(y)
        coef, _ = nnls(X / y[:, None], np.ones(len(y)))
        return coef.tolist()

    def fit(kind, target):
        X = [features(kind, r["gaussians"], r["box"], r["cells"], r["encoder_cells"]) for r in rows]
        return solve(X, [target(r) for r in rows])

    calls = [(r, c) for r in rows for c in r.get("refine_calls", [])]
    refine = solve([refine_features(c["n"], r["refine_anchors"], r["gaussians"], r["box"], r["cells"])
                    for r, c in calls], [c["seconds"] for _, c in calls]) if calls else [0.0, 0.0, 0.0]
    mem_x = np.array([[1.0, r["batch"] * r["gaussians"] * _ky_kx(r) * 1e-6] for r in rows])
    mem_y = np.array([r["peak_rss_mb"] for r in rows])
    mem, _ = nnls(mem_x, mem_y)
    return {
        "train": fit("train", lambda r: r["train_s"] - r["encoder_s"]),
        "encoder": fit("encoder", lambda r: r["encoder_s"]),
        "validation": fit("validation", lambda r: r["validation_s"]),
        "refine": refine,
        "memory_mb": mem.tolist(),
    }


def _ky_kx(row: dict) -> int:
    ky, kx = band_rect(row["box"], row["pixel_size_angstrom"], row["band_angstrom"])
    return ky + kx


@dataclass
class Estimate:
    """Predicted wall time (seconds, None where the device has no coefficients), peak RSS (MB) and the
    parts of the time (seconds each)."""

    seconds: float | None
    peak_rss_mb: float
    parts: dict

    def lines(self) -> list[str]:
        if self.seconds is None:
            head = "estimate: time not measured on this device (docs/performance.md)"
        else:
            head = f"estimate: wall time {_hms(self.seconds)} ({self.seconds:.0f} s)"
        out = [head]
        if math.isfinite(self.peak_rss_mb):  # the sample runs measure time only
            out.append(f"estimate: peak memory {self.peak_rss_mb / 1024:.2f} GB resident")
        out += [f"  {k}: {_hms(v)}" for k, v in self.parts.items()]
        return out


def _hms(s: float) -> str:
    h, rem = divmod(int(round(s)), 3600)
    return f"{h}h{rem // 60:02d}m{rem % 60:02d}s" if h else f"{rem // 60}m{rem % 60:02d}s"


def speedup(threads: int, parallel_fraction: float) -> float:
    return 1.0 / ((1.0 - parallel_fraction) + parallel_fraction / max(1, threads))


def estimate_run(config, n_particles: int, n_gaussians: int, box: int, pixel_size_angstrom: float,
                 n_sym: int = 1, device: str = "cpu", threads: int = 1, cache_mb: float = 256.0,
                 coefficients: dict | None = None) -> Estimate:
    """Predict a run of :class:`~gmmplat.train.config.RunConfig` ``config`` on ``n_particles`` particles
    (× ``n_sym`` symmetry copies) against a neutral GMM of ``n_gaussians`` at ``box`` px, ``pixel_size_angstrom``."""
    co = coefficients or load_coefficients()
    dev = co["devices"].get(device.split(":")[0])
    N, M, apix = int(n_gaussians), int(box), float(pixel_size_angstrom)
    items = n_particles * n_sym
    n_val = int(round(items * config.validation_fraction))
    n_train = items - n_val
    enc_res = config.encoder.options.get("input_res_angstrom")
    c_enc = math.prod(band_rect(M, apix, enc_res))

    def dot(kind, cells, with_encoder=True):
        c = dev[kind]
        return float(np.dot(c, features(kind, N, M, cells, c_enc if with_encoder else 0.0)))

    def epoch(r, with_encoder=True):
        cells = math.prod(band_rect(M, apix, r.high_res_angstrom))
        train = dot("train", cells) + (dot("encoder", cells) if with_encoder else 0.0)
        return n_train * train + n_val * dot("validation", cells, with_encoder)

    ref = config.refine
    c_ref = math.prod(band_rect(M, apix, ref.high_res_angstrom)) if ref.anchors else 0
    parts = {"fixed": dev["fixed_s"] if dev else 0.0}
    parts["rounds"] = sum(r.epochs * epoch(r) for r in config.rounds) if dev else 0.0
    if ref.anchors and dev:
        anchors = ([ref.cycle_anchors or ref.anchors] * (ref.cycles - 1) + [ref.anchors]) if ref.cycles else [ref.anchors]
        parts["refinement"] = sum(float(np.dot(dev["refine"], refine_features(items, a, N, M, c_ref))) for a in anchors)
        if posed_cycles(config):
            passes = len(posed_cycles(config)) * (ref.pose_steps + HESSIAN_PASSES)
            parts["poses"] = passes * items * dev["train"][1] * N * c_ref
        if ref.cycles:  # the epochs the schedule's cycles train (the last may differ)
            def cycle(last):
                return sum(e * epoch(config.rounds[r], False) for r, e in cycle_rounds(config, last))

            parts["cycles"] = (ref.cycles - 1) * cycle(False) + cycle(True)
    batch = max(r.batch_size for r in config.rounds)
    ky_kx = max(sum(band_rect(M, apix, r.high_res_angstrom)) for r in config.rounds)
    m0, m1 = co["memory_mb"]  # host memory, fitted on CPU runs
    peak = m0 + m1 * batch * N * ky_kx * 1e-6 + cache_mb + _METADATA_MB_PER_PARTICLE * n_particles
    if not dev:
        return Estimate(None, peak, {})
    s = speedup(threads, dev["parallel_fraction"])
    parts = {k: v if k == "fixed" else v / s for k, v in parts.items() if v}  # start-up and outputs: serial
    return Estimate(sum(parts.values()), peak, parts)
