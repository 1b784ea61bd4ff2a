"""What makes real particles unlike the clean sample datasets, as options of the simulation.

:class:`Nuisances` holds each nuisance's size; :func:`draw_nuisances` draws every particle's
values from seeded streams of their own, so a dataset without nuisances is the same file as
before they existed.  Each is recorded per particle in ``truth.csv`` (docs/sample_data.md):

* **junk** (``junk_fraction``, ``junk_kinds``): particles that are not the molecule: ``empty``
  ice (noise only), a ``fragment`` (a contiguous run of 20–50 % of the atoms, in the particle's
  conformation), or an ``other`` object (as many atoms scattered in a ball of the molecule's
  radius of gyration).  Their written poses are as random as any other.
* **B-factor** (``bfactor_range_angstrom2``): an envelope ``exp(−B |k|²/4)`` (RELION's CTF
  B-factor) with ``B`` uniform in the range per particle; the STAR file records 0, as a
  refinement that does not estimate it per particle.
* **coloured noise** (``noise_power_at_nyquist``): noise power per frequency
  ``S(k) ∝ ρ^(|k|/k_Nyquist)``, ``ρ`` the power at Nyquist relative to that at the origin,
  scaled so that the real-space variance per pixel is the SNR's (:func:`noise_spectrum`).
* **scale** (``scale_sigma``): every image times a lognormal factor ``exp(σ ε)``, ε ~ N(0, 1)
  (ice thickness, exposure).
* **pose errors** (``pose_error_deg``, ``shift_error_angstrom``): the STAR file holds the true
  pose turned by a random rotation whose rotation vector has this standard deviation per axis
  (the angle's median is 1.54 times it) and the true origin plus a 2D Gaussian error of this
  standard deviation per axis (median 1.18 times it).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import ConfigError

JUNK_KINDS = ("empty", "fragment", "other")


@dataclass(frozen=True)
class Nuisances:
    """Sizes of the nuisances (see the module docstring); the defaults are none."""

    junk_fraction: float = 0.0
    junk_kinds: tuple[str, ...] = JUNK_KINDS
    bfactor_range_angstrom2: tuple[float, float] = (0.0, 0.0)
    noise_power_at_nyquist: float = 1.0
    scale_sigma: float = 0.0
    pose_error_deg: float = 0.0
    shift_error_angstrom: float = 0.0

    def __post_init__(self):
        lo, hi = (float(v) for v in self.bfactor_range_angstrom2)
        checks = [
            (0.0 <= self.junk_fraction < 1.0, f"junk fraction must be in [0, 1), got {self.junk_fraction}"),
            (len(self.junk_kinds) > 0 and set(self.junk_kinds) <= set(JUNK_KINDS),
             f"junk kinds must be among {', '.join(JUNK_KINDS)}, got {', '.join(self.junk_kinds) or 'none'}"),
            (0.0 <= lo <= hi and math.isfinite(hi), f"B-factor range must be 0 <= LO <= HI Å², got {lo:g},{hi:g}"),
            (math.isfinite(self.noise_power_at_nyquist) and self.noise_power_at_nyquist > 0,
             f"noise power at Nyquist must be positive, got {self.noise_power_at_nyquist}"),
            (math.isfinite(self.scale_sigma) and self.scale_sigma >= 0,
             f"scale sigma must be >= 0, got {self.scale_sigma}"),
            (math.isfinite(self.pose_error_deg) and 0 <= self.pose_error_deg <= 45,
             f"pose error must be 0 to 45 degrees, got {self.pose_error_deg}"),
            (math.isfinite(self.shift_error_angstrom) and self.shift_error_angstrom >= 0,
             f"shift error must be >= 0 Å, got {self.shift_error_angstrom}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def any(self) -> bool:
        return self != Nuisances(junk_kinds=self.junk_kinds)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["junk_kinds"] = list(self.junk_kinds)
        d["bfactor_range_angstrom2"] = [float(v) for v in self.bfactor_range_angstrom2]
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "Nuisances":
        d = dict(d or {})
        if "junk_kinds" in d:
            d["junk_kinds"] = tuple(d["junk_kinds"])
        if "bfactor_range_angstrom2" in d:
            d["bfactor_range_angstrom2"] = tuple(d["bfactor_range_angstrom2"])
        return cls(**d)


#: The ``realistic`` variants of the sample datasets (``gmmplat simulate --realistic``): each
#: nuisance at a size common in real data (12 % junk, half empty ice and half fragments; B 40–120 Å²;
#: noise power at Nyquist a quarter of that at the origin; scale σ 0.15; poses off by a median 4.6°,
#: origins by 1.2 Å).  ``other`` objects are left to ``--junk-kinds``: a ball of the molecule's mass
#: and size looks like the molecule at 10 Å (docs/benchmarks.md, "Real data").
REALISTIC = Nuisances(junk_fraction=0.12, junk_kinds=("empty", "fragment"), bfactor_range_angstrom2=(40.0, 120.0),
                      noise_power_at_nyquist=0.25, scale_sigma=0.15, pose_error_deg=3.0, shift_error_angstrom=1.0)


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def draw_nuisances(n: int, nuisances: Nuisances, seed: int) -> dict[str, np.ndarray]:
    """Per-particle values ``(n,)``: ``junk`` bool, ``junk_kind`` str ('' for particles),
    ``fragment_start``/``fragment_fraction`` (fragments), ``bfactor_angstrom2``, ``scale``,
    ``rotation_error`` ``(n, 3, 3)`` and ``shift_error_angstrom`` ``(n, 2)``."""
    r = _rng(seed, 20)
    junk = np.zeros(n, dtype=bool)
    n_junk = int(round(nuisances.junk_fraction * n))
    if n_junk:
        junk[r.choice(n, n_junk, replace=False)] = True
    kinds = np.array([""] * n, dtype=object)
    idx = np.flatnonzero(junk)
    kinds[idx] = np.asarray(nuisances.junk_kinds, dtype=object)[np.arange(len(idx)) % len(nuisances.junk_kinds)]
    r = _rng(seed, 21)
    fragment_fraction = r.uniform(0.2, 0.5, n)
    fragment_start = r.uniform(0.0, 1.0, n)
    lo, hi = nuisances.bfactor_range_angstrom2
    bfactor = _rng(seed, 22).uniform(lo, hi, n) if hi > 0 else np.zeros(n)
    scale = np.exp(nuisances.scale_sigma * _rng(seed, 23).standard_normal(n))
    rotvec = np.deg2rad(nuisances.pose_error_deg) * _rng(seed, 24).standard_normal((n, 3))
    shift_error = nuisances.shift_error_angstrom * _rng(seed, 25).standard_normal((n, 2))
    return {"junk": junk, "junk_kind": kinds.astype(str), "fragment_fraction": fragment_fraction,
            "fragment_start": fragment_start, "bfactor_angstrom2": bfactor, "scale": scale,
            "rotation_error": rotvec_matrices(rotvec), "shift_error_angstrom": shift_error}


def rotvec_matrices(rotvec: np.ndarray) -> np.ndarray:
    """``(n, 3, 3)`` float64 rotations of rotation vectors ``(n, 3)`` (rad), numpy in and out."""
    from ..physics.geometry import axis_angle_to_matrix

    return axis_angle_to_matrix(torch.as_tensor(np.asarray(rotvec, dtype=np.float64))).numpy()


def junk_coordinates(kind: str, xyz: np.ndarray, fraction: float, start: float, seed: int, index: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(coordinates (k, 3), atom rows (k,))`` of a junk particle from the molecule's ``xyz (N, 3)``.

    ``fragment``: a contiguous run of ``fraction`` of the atoms starting at ``start`` of the list;
    ``other``: every atom placed uniformly in a ball of the molecule's radius of gyration (seeded by
    ``seed`` and the particle ``index``); ``empty``: no atom.
    """
    N = len(xyz)
    if kind == "empty":
        return np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    if kind == "fragment":
        k = max(1, int(round(fraction * N)))
        first = int(start * (N - k))
        rows = np.arange(first, first + k)
        return xyz[rows], rows
    if kind == "other":
        rg = float(np.sqrt(np.mean(np.sum((xyz - xyz.mean(0)) ** 2, 1))))
        r = _rng(seed, 1000 + int(index))
        direction = r.standard_normal((N, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        radius = rg * r.uniform(0, 1, N) ** (1 / 3)
        return direction * radius[:, None], np.arange(N)
    raise ConfigError(f"unknown junk kind {kind!r}; known: {', '.join(JUNK_KINDS)}")


def noise_spectrum(box: int, pixel_size_angstrom: float, power_at_nyquist: float) -> torch.Tensor:
    """Relative noise power on the centred rfft grid ``(M, M//2+1)`` float64, mean 1 over the whole plane.

    ``S(k) ∝ ρ^(|k|/k_Nyquist)`` (``ρ = power_at_nyquist``; 1 is white noise).  The whole plane's
    mean counts each half-plane cell with its conjugate, so real-space noise filtered by ``√S``
    keeps its variance per pixel.
    """
    ky = torch.fft.fftfreq(box, dtype=torch.float64) * 2.0  # in units of Nyquist
    kx = torch.fft.rfftfreq(box, dtype=torch.float64) * 2.0
    r = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    S = torch.exp(math.log(float(power_at_nyquist)) * r)
    w = torch.full_like(kx, 2.0)
    w[0] = 1.0
    if box % 2 == 0:
        w[-1] = 1.0
    return S / ((S * w[None, :]).sum() / (box * box))


def colour_noise(noise: torch.Tensor, spectrum: torch.Tensor) -> torch.Tensor:
    """Filter real-space noise ``(B, M, M)`` by ``√spectrum`` ``(M, M//2+1)`` (:func:`noise_spectrum`)."""
    M = noise.shape[-1]
    return torch.fft.irfft2(torch.fft.rfft2(noise) * torch.sqrt(spectrum), s=(M, M))
