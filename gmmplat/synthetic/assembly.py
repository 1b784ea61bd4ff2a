"""A large synthetic assembly: a C4 tetramer whose four subunits each swing a domain, driven by one t.

Each subunit (chains A–D, 608 residues, backbone plus Cβ) is a 12-helix core (a 3 × 4 grid of
30-residue helices along z, 10 Å apart, like a transmembrane bundle), a hinge loop, and a
6-helix domain (a 3 × 2 grid of 30-residue helices along the radial direction x, below the
core's outer edge).  Chain B is chain A turned by +90° about z, C by 180°, D by 270°, with the
same residue names and peptide turns, so the neutral model is exactly C4-symmetric about the
z axis through the box centre (RELION's C4 axis).

Motion: every domain turns rigidly by ``max_angle_deg · t`` about its subunit's tangential
axis (chain A: y) through the Cα in the middle of its hinge loop.  All four move together,
so every conformation keeps the C4 symmetry and a symmetry-expanded particle's four copies
share the particle's ``t``.  The size (2,408 Cα, 11,952 atoms, about 220 Å across) is that
of a large channel; it needs a box of 256 px at 1 Å/px (:data:`TETRAMER_DEFAULTS`).
"""
from __future__ import annotations

import numpy as np

from .motions import MOTIONS, Motion, rotation_matrices
from .structures import AtomicModel, ChainTrace, Helix, build_chain

CHAINS = ("A", "B", "C", "D")
#: simulation options this molecule needs (``gmmplat simulate tetramer`` fills them in unless given)
TETRAMER_DEFAULTS = {"box": 256, "pixel_size_angstrom": 1.0, "sigma_angstrom": 1.5, "n_consensus": 5}

_HELIX_RESIDUES = 30
_SPACING_ANGSTROM = 10.0
_CORE_INNER_X_ANGSTROM = 23.0  # keeps neighbouring subunits' closest helices 11 Å apart


def _subunit_trace() -> tuple[ChainTrace, int]:
    """Chain A's Cα trace and the index of its first domain helix."""
    n, s = _HELIX_RESIDUES, _SPACING_ANGSTROM
    core = []
    for i in range(3):  # serpentine over the grid so that consecutive helices are neighbours
        rows = range(4) if i % 2 == 0 else range(3, -1, -1)
        for j in rows:
            up = len(core) % 2 == 0
            core.append(Helix((_CORE_INNER_X_ANGSTROM + s * i, -15.0 + s * j, 0.0), (0, 0, 1 if up else -1), n))
    x_mid = _CORE_INNER_X_ANGSTROM + 2 * s + 14.0 + (n - 1) * 1.5 / 2
    domain = []
    for k, y in enumerate((10.0, 0.0, -10.0)):
        for z in ((-26.0, -16.0) if k % 2 == 0 else (-16.0, -26.0)):
            outward = len(domain) % 2 == 0
            domain.append(Helix((x_mid, y, z), (1 if outward else -1, 0, 0), n))
    # the domain's loops near the core bulge down, not into the hinge loop
    bulges = [None] * len(core) + [None if k % 2 == 0 else (0.0, 0.0, -1.0) for k in range(len(domain) - 1)]
    return build_chain(core + domain, bulges=bulges), len(core)


def _turn_z(xyz: np.ndarray, k: int) -> np.ndarray:
    """Points ``(..., 3)`` turned by ``k`` × 90° about z (active, right-handed)."""
    return xyz @ rotation_matrices(np.array([0.0, 0.0, 1.0]), np.array([np.pi / 2 * k]))[0].T


class TetramerMotion(Motion):
    """C4 tetramer; each subunit's domain turns by ``max_angle_deg · t`` about its tangential hinge axis."""

    name = "tetramer"
    simulation_defaults = TETRAMER_DEFAULTS

    def __init__(self, max_angle_deg: float = 15.0, seed: int = 4):
        super().__init__()
        trace, first_domain_helix = _subunit_trace()
        single = AtomicModel.from_traces({"A": trace}, seed)
        traces = {c: ChainTrace(_turn_z(trace.ca, k), trace.ss, trace.helix_index) for k, c in enumerate(CHAINS)}
        # identical residue names and peptide turns in every chain: the model is exactly C4-symmetric
        names = {c: single.residue_names["A"] for c in CHAINS}
        turns = {c: single.turns["A"] for c in CHAINS}
        model = AtomicModel(traces, names, turns)
        shift = -(model.electrons[:, None] * model.xyz).sum(0) / model.electrons.sum()
        shift[:2] = 0.0  # zero by symmetry up to rounding: keep the C4 axis exactly on z
        traces = {c: ChainTrace(t.ca + shift, t.ss, t.helix_index) for c, t in traces.items()}
        self.model = AtomicModel(traces, names, turns)
        loop = np.arange(int(np.nonzero(trace.helix_index == first_domain_helix - 1)[0][-1]) + 1,
                         int(np.nonzero(trace.helix_index == first_domain_helix)[0][0]))
        pivot = int(loop[len(loop) // 2])
        self.pivot_residue = pivot + 1
        self.max_angle_deg = float(max_angle_deg)
        m = self.model
        self.hinge_axes = np.stack([_turn_z(np.array([0.0, 1.0, 0.0]), k) for k in range(4)])  # (4, 3)
        self.hinge_points_angstrom = np.stack([traces[c].ca[pivot] for c in CHAINS])  # (4, 3)
        self.domain_masks = [(m.chain_id == c) & (m.res_seq >= self.pivot_residue) for c in CHAINS]
        self.masks["moving_domain"] = np.any(self.domain_masks, axis=0)
        for c, mask in zip(CHAINS, self.domain_masks):
            self.masks[f"moving_domain_{c}"] = mask
        last = int(m.res_seq.max())
        self.description = (
            f"C4 tetramer (chains A-D, {last} residues each: 12-helix core, hinge loop, 6-helix domain). Each "
            f"subunit's domain (residues {self.pivot_residue}-{last}) turns rigidly by {max_angle_deg:g}°·t about its "
            f"tangential axis through the Cα of residue {self.pivot_residue}; the four move together, so every "
            f"conformation is C4-symmetric about z."
        )
        self.info.update(
            max_angle_deg=self.max_angle_deg, symmetry="C4", symmetry_axis=[0.0, 0.0, 1.0],
            hinge_axes=self.hinge_axes.tolist(), pivot_residue=self.pivot_residue,
            hinge_points_angstrom=self.hinge_points_angstrom.tolist(), simulation_defaults=TETRAMER_DEFAULTS,
        )

    def coordinates_batch(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        xyz = np.repeat(self.neutral[None], len(t), axis=0)
        for axis, p, mask in zip(self.hinge_axes, self.hinge_points_angstrom, self.domain_masks):
            R = rotation_matrices(axis, np.radians(self.max_angle_deg) * t)  # (B, 3, 3)
            xyz[:, mask] = (xyz[:, mask] - p) @ np.swapaxes(R, -1, -2) + p
        return xyz


MOTIONS["tetramer"] = TetramerMotion
