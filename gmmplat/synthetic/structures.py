"""Ideal protein-like atomic models built in code: α-helices joined by short loops.

A chain is first built as a Cα trace (exact ideal geometry), then the backbone
atoms N, C, O and the Cβ are placed from the trace with ideal peptide geometry
(:func:`backbone_from_ca`).  Because the backbone is a function of the trace
alone, a motion may move Cα atoms and rebuild the rest.  The backbone builder
and :class:`AtomicModel` live in :mod:`gmmplat.synthetic.model` and are
re-exported here.

Ideal α-helix: rise 1.5 Å and 100° per residue; the Cα radius, 2.28 Å (the
textbook 2.3 Å, refined), makes consecutive Cα exactly 3.80 Å apart.  Loops are
circular arcs whose Cα are exactly 3.80 Å apart.  All lengths in Å.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# AtomicModel, ChainTrace and the backbone builder live in .model; re-exported here.
from .model import (  # noqa: F401
    ELECTRONS,
    HELIX_CORE,
    HELIX_SURFACE,
    LOOP_RESIDUES,
    AtomicModel,
    ChainTrace,
    _unit,
    backbone_from_ca,
)

CA_CA_ANGSTROM = 3.80
HELIX_RISE_ANGSTROM = 1.5
HELIX_TURN_DEG = 100.0
HELIX_RADIUS_ANGSTROM = math.sqrt(CA_CA_ANGSTROM**2 - HELIX_RISE_ANGSTROM**2) / (2 * math.sin(math.radians(50.0)))


def _perpendicular(axis: np.ndarray) -> np.ndarray:
    """A unit vector perpendicular to ``axis`` (deterministic)."""
    trial = np.eye(3)[int(np.argmin(np.abs(axis)))]
    return _unit(trial - axis * (trial @ axis))


@dataclass
class Helix:
    """An ideal right-handed α-helix.

    Attributes:
        centre_angstrom: (3,) midpoint of the helix axis.
        axis: (3,) direction N → C terminus (normalised on use).
        n_residues: number of residues; the axis length is ``(n - 1) * 1.5`` Å.
        phase_deg: azimuth of the first Cα about the axis, from ``reference``.
        reference: (3,) direction of azimuth 0 (default: a fixed perpendicular).
    """

    centre_angstrom: tuple
    axis: tuple
    n_residues: int
    phase_deg: float = 0.0
    reference: tuple | None = None

    def ca(self) -> np.ndarray:
        """Cα coordinates ``(n_residues, 3)`` Å."""
        axis = _unit(np.asarray(self.axis, dtype=np.float64))
        e1 = _perpendicular(axis) if self.reference is None else np.asarray(self.reference, dtype=np.float64)
        e1 = _unit(e1 - axis * (e1 @ axis))
        e2 = np.cross(axis, e1)
        k = np.arange(self.n_residues)
        phi = np.radians(self.phase_deg + HELIX_TURN_DEG * k)
        z = (k - (self.n_residues - 1) / 2) * HELIX_RISE_ANGSTROM
        radial = np.cos(phi)[:, None] * e1 + np.sin(phi)[:, None] * e2
        return np.asarray(self.centre_angstrom, dtype=np.float64) + HELIX_RADIUS_ANGSTROM * radial + z[:, None] * axis


def loop_ca(start: np.ndarray, end: np.ndarray, bulge: np.ndarray, n_residues: int | None = None) -> np.ndarray:
    """Cα of a loop joining ``start`` to ``end`` (both excluded): ``(n, 3)`` Å.

    The loop is a circular arc in the plane of the chord and ``bulge`` (bulging
    that way) with every Cα–Cα step exactly 3.80 Å.  ``n_residues`` defaults to
    the smallest count (at least 2) whose path is at least 1.6 times the chord
    (about a semicircle, which keeps the Cα virtual angles above ~100°).
    """
    start, end = np.asarray(start, float), np.asarray(end, float)
    chord = end - start
    D = float(np.linalg.norm(chord))
    if n_residues is None:
        n_residues = max(2, math.ceil(1.6 * D / CA_CA_ANGSTROM) - 1)
    m = n_residues + 1  # number of steps
    if D >= m * CA_CA_ANGSTROM:
        raise ValueError(f"a loop of {n_residues} residues cannot span {D:.2f} Å")
    u = chord / D
    w = np.asarray(bulge, float) - u * (np.asarray(bulge, float) @ u)
    w = _perpendicular(u) if np.linalg.norm(w) < 1e-6 else _unit(w)
    lo, hi = 1e-9, math.pi / m - 1e-12  # sin(m b)/sin(b) decreases from m to 0 on (0, pi/m)
    target = D / CA_CA_ANGSTROM
    for _ in range(200):
        beta = 0.5 * (lo + hi)
        if math.sin(m * beta) / math.sin(beta) > target:
            lo = beta
        else:
            hi = beta
    beta = 0.5 * (lo + hi)
    R = CA_CA_ANGSTROM / (2 * math.sin(beta))
    centre = 0.5 * (start + end) - w * R * math.cos(m * beta)
    theta = (2 * np.arange(1, m) - m) * beta
    return centre + R * (np.sin(theta)[:, None] * u + np.cos(theta)[:, None] * w)


def _angle_deg(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    u, v = _unit(a - b), _unit(c - b)
    return math.degrees(math.acos(float(np.clip(u @ v, -1.0, 1.0))))


def _junction_friendly_loop(before: np.ndarray, after: np.ndarray, bulge: np.ndarray, n: int | None) -> np.ndarray:
    """Loop from ``before[-1]`` to ``after[0]`` with the bulge turned (≤ 60° about the chord) so the
    Cα virtual angles at both junctions are as open as possible."""
    chord = _unit(after[0] - before[-1])
    best, best_score = None, -np.inf
    for deg in np.arange(-60.0, 61.0, 10.0):
        th = math.radians(deg)
        b = bulge * math.cos(th) + np.cross(chord, bulge) * math.sin(th) + chord * (chord @ bulge) * (1 - math.cos(th))
        loop = loop_ca(before[-1], after[0], b, n)
        score = min(_angle_deg(before[-2], before[-1], loop[0]), _angle_deg(loop[-1], after[0], after[1]))
        score -= 0.05 * abs(deg)  # prefer the requested direction when nearly equal
        if score > best_score:
            best, best_score = loop, score
    return best


def build_chain(
    helices: list[Helix], loop_residues: list[int | None] | None = None, bulges: list | None = None
) -> ChainTrace:
    """Join helices in order with arc loops (:func:`loop_ca`).

    ``loop_residues[i]`` / ``bulges[i]`` set the length / bulge direction of the loop
    after helix ``i`` (``None``: automatic length / the preceding helix's axis).
    """
    loop_residues = loop_residues or [None] * (len(helices) - 1)
    bulges = bulges or [None] * (len(helices) - 1)
    parts, ss, hidx = [], [], []
    for i, helix in enumerate(helices):
        ca = helix.ca()
        if i > 0:
            bulge = helices[i - 1].axis if bulges[i - 1] is None else bulges[i - 1]
            loop = _junction_friendly_loop(parts[-1][-2:], ca[:2], np.asarray(bulge, float), loop_residues[i - 1])
            parts.append(loop)
            ss += ["L"] * len(loop)
            hidx += [-1] * len(loop)
        parts.append(ca)
        ss += ["H"] * len(ca)
        hidx += [i] * len(ca)
    return ChainTrace(np.concatenate(parts), np.array(ss), np.array(hidx))
