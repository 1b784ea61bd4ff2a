"""The data check: do the particles fit their STAR conventions better than the usual mistakes?

:func:`run_check` projects a reference (:mod:`.references`) with each particle's pose,
shift and CTF, correlates the prediction with the image on a low-pass band, and does
the same for every alternative of :mod:`.conventions`.  Correlations are computed on
the centred rfft band (Parseval: the same as the real-space correlation of low-passed,
mean-subtracted images).

Decision (``docs/check.md``): for an alternative, ``z`` = mean of the per-particle
difference ``CC(stated) − CC(alternative)`` over its standard error.  An alternative
whose noise-free prediction correlates with the stated one at ≥ ``SIMILAR_CC`` cannot be
told apart at this resolution and is left out of the decision.

* A mistake is *identified* when an alternative, or an alternative with inverted
  polarity, has the highest mean CC and beats the stated conventions by ≥ ``MARGIN_SE``.
* The check *passes* when the stated conventions beat every testable alternative (the
  polarity and the shuffled control included) by ≥ ``MARGIN_SE``.
* Otherwise it is inconclusive (or the rows do not match the stack, when the stated
  conventions do not beat the shuffled control).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..physics.ctf import ctf_rfft
from ..physics.fourier import Band
from .conventions import CTF_ROW, GEOMETRIC, ROW_LABELS, STATED, describe, predictions, transpose_band

MARGIN_SE = 5.0
SIMILAR_CC = 0.98


@dataclass
class RowResult:
    """One row of the table: mean ± standard error of the per-particle CC, the stated
    conventions' lead over it (``z``, in standard errors of the paired difference), and
    the mean CC of its noise-free prediction with the stated one (``similarity``)."""

    name: str
    label: str
    mean: float
    se: float
    z: float
    similarity: float
    testable: bool


@dataclass
class CheckResult:
    """Outcome of :func:`run_check`.  ``mistake``: names of the alternatives that clearly fit
    better (``[]`` if none); ``verdict``: one line; ``examples``: real low-passed images
    ``(k, M, M)`` under ``"image"``, ``"stated"`` and (if a mistake) ``"mistake"``."""

    rows: list[RowResult]
    passed: bool
    mistake: list[str]
    verdict: str
    n_particles: int
    lowpass_angstrom: float
    reference: str
    seconds: float
    cc: dict = field(repr=False, default_factory=dict)
    examples: dict = field(repr=False, default_factory=dict)
    notes: list = field(default_factory=list)  # values the particle reader took from options

    def table(self):
        import pandas as pd

        return pd.DataFrame([r.__dict__ for r in self.rows]).set_index("name")

    def report(self) -> str:
        lines = [f"{self.n_particles} particles against {self.reference}, low-pass {self.lowpass_angstrom:g} Å",
                 f"{'':32s}{'CC mean ± s.e.':>18s}{'stated leads by':>18s}"]
        for r in self.rows:
            lead = "" if r.name == STATED else ("  (same prediction)" if not r.testable
                                                else f"{r.z:10.1f} s.e." if abs(r.z) < 1000 else "      >999 s.e.")
            lines.append(f"{r.label:32s}{r.mean:10.3f} ± {r.se:.3f}   {lead}")
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'}: {self.verdict}")
        return "\n".join(lines)

    def figure(self):
        from .figure import examples_figure

        return examples_figure(self)


def _weights(band: Band) -> torch.Tensor:
    """Parseval weights on the rfft band (:class:`gmmplat.losses.base.RingSums`: 2, or 1 on the self-conjugate
    columns; 0 at DC, so the CC is of mean-subtracted images, and outside the band)."""
    from ..losses.base import RingSums

    return RingSums(band).cell_weight.to(torch.float64)


def _cc(w: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> np.ndarray:
    X, Y = X.to(torch.complex128), Y.to(torch.complex128)
    num = (w * (X * Y.conj()).real).sum((-2, -1))
    den = torch.sqrt((w * X.abs() ** 2).sum((-2, -1)) * (w * Y.abs() ** 2).sum((-2, -1)))
    return (num / den.clamp_min(1e-300)).numpy()


def paired_z(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of ``a − b`` over its standard error (±inf when all differences are equal and non-zero)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    se = d.std(ddof=1) / math.sqrt(d.size)
    if se < 1e-12 * max(1.0, abs(d.mean())):
        return 0.0 if abs(d.mean()) < 1e-9 else math.copysign(math.inf, d.mean())
    return float(d.mean() / se)


def _project_subset(dataset, reference, rows, band, chunk, progress):
    """Band transforms ``(n, Ky, Kx)``: images, P(A), P(Aᵀ); shifts ``(n, 2)``; CTF ``(n, Ky, Kx)``."""
    from tqdm.auto import tqdm

    from .ctf_variants import ctf_variants

    parts, variants, fixes = [], {}, {}
    for s in tqdm(range(0, rows.size, chunk), desc="check", unit="batch", disable=not progress):
        b = dataset.get_batch(rows[s : s + chunk] * dataset.n_sym)  # symmetry copy 0: the STAR pose
        A = b.rotations.to(torch.float64)
        parts.append((band.images_to_band(b.images.to(torch.float64)).to(torch.complex64),
                      reference.project(A, band), reference.project(A.transpose(-1, -2), band),
                      b.shifts_angstrom.to(torch.float64),
                      ctf_rfft(b.ctf, dataset.box, dataset.pixel_size_angstrom, band).to(torch.float32)))
        for name, (params, fix) in ctf_variants(b.ctf).items():
            variants.setdefault(name, []).append(
                ctf_rfft(params, dataset.box, dataset.pixel_size_angstrom, band).to(torch.float32))
            fixes[name] = fix
    return [torch.cat(x) for x in zip(*parts)], {n: (torch.cat(v), fixes[n]) for n, v in variants.items()}


def _ctf_row(w, band, P, shifts, obs, stated, variants) -> tuple[np.ndarray, float, str, str]:
    """The CTF-parameter row: per-particle CC, similarity with the stated prediction, the variant's name and
    fix, for the best-fitting variant that can be told from the stated CTF (else the best one)."""
    from .conventions import shift_phase

    S = shift_phase(band, shifts)
    scored = []
    for name, (ctf, fix) in variants.items():
        pred = P * S * ctf
        scored.append((_cc(w, pred, obs), float(_cc(w, pred, stated).mean()), name, fix))
    testable = [v for v in scored if v[1] < SIMILAR_CC] or scored
    return max(testable, key=lambda v: float(v[0].mean()))


def run_check(dataset, reference, n: int = 500, lowpass_angstrom: float = 12.0, seed: int = 0,
              n_examples: int = 6, chunk: int = 128, progress: bool = False) -> CheckResult:
    """Check ``n`` random particles of ``dataset`` against ``reference``.

    Args:
        dataset: a :class:`gmmplat.io.dataset.ParticleDataset` (or any object with ``get_batch``,
            ``n_particles``, ``n_sym``, ``box``, ``pixel_size_angstrom``, ``invert_contrast``).
        reference: :class:`~.references.MapReference` or :class:`~.references.GMMReference`.
        n: particles drawn (all when fewer); lowpass_angstrom: resolution limit of the CC.
    """
    t0 = time.perf_counter()
    if dataset.n_particles < 3:
        raise ConfigError(f"the data check needs at least 3 particles, the STAR file has {dataset.n_particles}")
    nyquist = 2 * dataset.pixel_size_angstrom
    coarsest = dataset.box * dataset.pixel_size_angstrom  # the first Fourier ring: one frequency besides the mean
    usable = f"the usable range is {nyquist:g}..{coarsest:g} Å ({dataset.box} px at {dataset.pixel_size_angstrom:g} Å/px)"
    if lowpass_angstrom < nyquist:
        raise ConfigError(f"--lowpass-angstrom {lowpass_angstrom:g} is beyond Nyquist ({nyquist:g} Å); {usable}")
    if not lowpass_angstrom <= coarsest:
        raise ConfigError(f"--lowpass-angstrom {lowpass_angstrom:g} leaves no frequency to correlate; {usable}")
    band = Band(dataset.box, dataset.pixel_size_angstrom, high_res_angstrom=float(lowpass_angstrom))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(dataset.n_particles, size=min(int(n), dataset.n_particles), replace=False))
    (obs, P, PT, shifts, ctf), variants = _project_subset(dataset, reference, rows, band, chunk, progress)
    pairs = predictions(band, P, PT, shifts, ctf, obs)
    order = rng.permutation(rows.size)
    perm = np.empty_like(order)
    perm[order] = np.roll(order, 1)  # a derangement: no image keeps its own prediction
    w = _weights(band)
    stated = pairs[STATED][0]
    cc = {name: _cc(w, pred, o) for name, (pred, o) in pairs.items()}
    cc["shuffled"] = _cc(w, stated, obs[perm])
    similarity = {name: float(_cc(w, pred, stated).mean()) for name, (pred, _) in pairs.items()}
    similarity["image_transposed"] = float(_cc(w, transpose_band(band, stated), stated).mean())
    similarity["shuffled"] = float(_cc(w, stated[perm], stated).mean())
    cc[CTF_ROW], similarity[CTF_ROW], variant, variant_fix = _ctf_row(w, band, P, shifts, obs, stated, variants)
    labels = {**ROW_LABELS, CTF_ROW: f"CTF parameters ({variant})"}
    out_rows = []
    for name in [STATED, *GEOMETRIC, "polarity", "shuffled"]:
        c = cc[name]
        out_rows.append(RowResult(name, labels[name], float(c.mean()), float(c.std(ddof=1) / math.sqrt(c.size)),
                                  0.0 if name == STATED else paired_z(cc[STATED], c), similarity[name],
                                  name != STATED and similarity[name] < SIMILAR_CC))
    mistake, verdict, passed = _decide(out_rows, cc, bool(dataset.invert_contrast), (variant, variant_fix))
    k = min(n_examples, rows.size)
    examples = {}
    if k > 0:
        examples = {"image": band.band_to_images(obs[:k]).numpy(), "stated": band.band_to_images(stated[:k]).numpy()}
    if mistake and k > 0:
        geo = [m for m in mistake if m not in ("polarity", CTF_ROW)]
        alt = pairs[geo[0]][0][:k] if geo else stated[:k]
        if geo == ["image_transposed"]:
            alt = transpose_band(band, alt)
        examples["mistake"] = band.band_to_images(-alt if "polarity" in mistake else alt).numpy()
    return CheckResult(out_rows, passed, mistake, verdict, int(rows.size), float(lowpass_angstrom),
                       reference.describe(), time.perf_counter() - t0, cc, examples)


def _decide(rows: list[RowResult], cc: dict, invert_contrast: bool,
            ctf_variant: tuple[str, str] | None = None) -> tuple[list[str], str, bool]:
    by_name = {r.name: r for r in rows}
    candidates = []  # (mean CC, names, per-particle CC)
    for name in (STATED, *GEOMETRIC):
        if name != STATED and not by_name[name].testable:
            continue
        for sign in (1.0, -1.0):
            names = ([] if name == STATED else [name]) + (["polarity"] if sign < 0 else [])
            if names:
                candidates.append((float((sign * cc[name]).mean()), names, sign * cc[name]))
    best = max(candidates, key=lambda c: c[0])
    z_best = paired_z(best[2], cc[STATED])
    if best[0] > by_name[STATED].mean and z_best >= MARGIN_SE:
        what, fix = describe(best[1], invert_contrast, ctf_variant)
        lead = f"{z_best:.1f}" if z_best < 1000 else ">999"
        return best[1], f"{what}: {fix} (CC {best[0]:.3f} vs {by_name[STATED].mean:.3f} stated, {lead} s.e.)", False
    testable = [r for r in rows if r.testable]
    weakest = min(testable, key=lambda r: r.z) if testable else None
    if weakest is None or weakest.z >= MARGIN_SE:
        return [], f"the stated conventions fit best (by ≥ {MARGIN_SE:g} s.e. over every alternative)", True
    if by_name["shuffled"].z < MARGIN_SE:
        what, fix = describe(["shuffled"], invert_contrast)
        return [], f"{what} (lead {by_name['shuffled'].z:.1f} s.e.): {fix}", False
    return [], (f"inconclusive: the stated conventions lead '{weakest.label}' by only {weakest.z:.1f} s.e. "
                f"(< {MARGIN_SE:g}); use more particles (--n) or a lower resolution (--lowpass-angstrom)"), False
