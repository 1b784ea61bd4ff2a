"""The three synthetic datasets' molecules and motions, driven by one scalar t ∈ [-1, 1].

Every motion maps ``t`` to coordinates ``(N_atoms, 3)`` Å of the same atom list
(relative to the box centre; the neutral model's electron-weighted centroid is
the origin), with ``t = 0`` the neutral model:

- ``hinge``: a 5-helix core and a 3-helix domain; the domain turns rigidly by
  ``15° · t`` about an axis (z) through a Cα of the linker (the pivot).
- ``bend``: a long 5-helix bundle bent (angle between the end tangents
  ``60° · t``) and twisted (``40° · t`` end to end) smoothly along its axis.
- ``coupled``: as hinge (axis tilted, ``15° · t``) plus a ``2.5 Å · t`` piston
  shift, along the bundle axis, of a 2-helix hairpin of the core (chain B).

Cα–Cα bonded distances stay 3.80 Å under all motions: rigid moves preserve
them, the hinge axis passes through the pivot Cα, and the bend restores them
after the smooth deformation (:func:`restore_bonds`: 0.2 Å rms, < 1 Å max at
|t| = 1) and rebuilds the backbone from the Cα trace.  The one exception is the
peptide bond into the pivot residue (C_i-1–N_i), which changes by ≤ 0.4 Å at |t| = 1.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .structures import CA_CA_ANGSTROM, AtomicModel, ChainTrace, Helix, build_chain

DATASETS = ("hinge", "bend", "coupled")
#: datasets too large for ``simulate all`` and ``make demo`` (``gmmplat simulate tetramer``; docs/sample_data.md)
LARGE_DATASETS = ("tetramer",)


def rotation_matrices(axis: np.ndarray, angle_rad: np.ndarray) -> np.ndarray:
    """Active rotations about unit ``axis`` (3,) by angles ``(B,)`` rad (right-hand rule) -> ``(B, 3, 3)``."""
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    th = np.asarray(angle_rad, float)[..., None, None]
    return np.eye(3) + np.sin(th) * K + (1 - np.cos(th)) * (K @ K)


def restore_bonds(ca: np.ndarray, length: float = CA_CA_ANGSTROM) -> np.ndarray:
    """Put consecutive Cα ``(..., n, 3)`` exactly ``length`` apart by small moves along the chain.

    From the middle residue outwards, each Cα is placed ``length`` from its already placed
    neighbour, on the line towards its own input position.  Inside a helix the correction is
    of the order of the input's bond-length error and does not accumulate (consecutive Cα–Cα
    bonds are nearly perpendicular).  Continuous in the input; the identity (to rounding) when
    the bonds already have the right length.
    """
    ca = np.asarray(ca, dtype=np.float64)
    out = ca.copy()
    mid = ca.shape[-2] // 2
    for order in (range(mid + 1, ca.shape[-2]), range(mid - 1, -1, -1)):
        for i in order:
            prev = out[..., i - 1 if i > mid else i + 1, :]
            d = ca[..., i, :] - prev
            out[..., i, :] = prev + length * d / np.linalg.norm(d, axis=-1, keepdims=True)
    return out


def _ring_helix(azimuth_deg: float, ring_radius: float, up: bool, n: int, z: float = 0.0, phase: float = 0.0) -> Helix:
    az = math.radians(azimuth_deg)
    radial = (math.cos(az), math.sin(az), 0.0)
    return Helix((ring_radius * radial[0], ring_radius * radial[1], z), (0, 0, 1 if up else -1), n, phase, radial)


def _centred(chains: dict[str, ChainTrace], seed: int) -> tuple[AtomicModel, np.ndarray]:
    """Build the model, then shift every trace so the electron-weighted centroid is 0. Returns (model, shift)."""
    model = AtomicModel.from_traces(chains, seed)
    shift = -(model.electrons[:, None] * model.xyz).sum(0) / model.electrons.sum()
    moved = {c: ChainTrace(t.ca + shift, t.ss, t.helix_index) for c, t in chains.items()}
    return AtomicModel(moved, model.residue_names, model.turns), shift


class Motion:
    """Base class: a neutral :class:`AtomicModel` and ``coordinates(t)``.

    Subclasses implement :meth:`coordinates_batch` and set ``name``,
    ``description``, ``masks`` ({name: (N_atoms,) bool}) and ``info`` (JSON-able).
    """

    name = "motion"
    description = ""
    #: simulation options this molecule needs, over :func:`gmmplat.synthetic.simulate.simulate_dataset`'s defaults
    simulation_defaults: dict = {}

    def __init__(self):
        self.model: AtomicModel
        self.masks: dict[str, np.ndarray] = {}
        self.info: dict = {}

    @property
    def neutral(self) -> np.ndarray:
        """(N_atoms, 3) Å, the t = 0 coordinates."""
        return self.model.xyz

    def coordinates(self, t: float) -> np.ndarray:
        """(N_atoms, 3) Å at truth coordinate ``t``."""
        return self.coordinates_batch(np.array([float(t)]))[0]

    def coordinates_batch(self, t: np.ndarray) -> np.ndarray:
        """(B, N_atoms, 3) Å for ``t`` of shape (B,)."""
        raise NotImplementedError

    def decode_fn(self, params, atom_index: np.ndarray):
        """The true motion as a decoder: ``z (B, 1) -> params (B, N, 5)``, the GMM ``params (N, 5)``
        with its centres on atoms ``atom_index (N,)`` at ``t = z[:, 0]`` (for viewers' sliders)."""
        import torch

        from ..model.gmm import with_xyz

        base = torch.as_tensor(params)

        def decode(z):
            xyz = self.coordinates_batch(np.asarray(z)[:, 0])[:, np.asarray(atom_index)]
            return with_xyz(base.expand(len(xyz), -1, -1), torch.as_tensor(xyz, dtype=base.dtype))

        return decode


class HingeMotion(Motion):
    """Two domains: the domain (pivot residue onward) turns by ``max_angle_deg · t`` about ``hinge_axis``."""

    name = "hinge"

    def __init__(self, max_angle_deg: float = 15.0, seed: int = 1):
        super().__init__()
        core = [_ring_helix(72.0 * (k + 1), 8.5, k % 2 == 0, 20) for k in range(5)]
        domain, bulges = self._domain(x_start=24.0, z_centre=12.0, n=18)
        trace = build_chain(core + domain, bulges=[None] * 5 + bulges)
        self.model, shift = _centred({"A": trace}, seed)
        self._setup_hinge(trace, "A", n_core_helices=5, axis=(0.0, 0.0, 1.0), shift=shift)
        self.max_angle_deg = float(max_angle_deg)
        self.description = (
            f"Two-domain molecule (chain A: 5-helix core, hinge loop, 3-helix domain). The domain "
            f"(residues {self._domain_text}) turns rigidly by {max_angle_deg:g}°·t about an axis along z through "
            f"the Cα of residue A:{self.pivot_residue} (the hinge); the core does not move."
        )
        self.info.update(max_angle_deg=self.max_angle_deg)

    @staticmethod
    def _domain(x_start: float, z_centre: float, n: int) -> tuple[list[Helix], list]:
        """3 helices along ±x from ``x_start`` around (y, z) = (0, z_centre), and the bulges of their 2 loops.

        The loop at the near end (towards the core) bulges down (-z) rather than into the core.
        """
        half = (n - 1) * 1.5 / 2
        out = []
        for k, ang in enumerate((90.0, 210.0, 330.0)):
            y, z = 5.8 * math.cos(math.radians(ang)), z_centre + 5.8 * math.sin(math.radians(ang))
            out.append(Helix((x_start + half, y, z), (1 if k % 2 == 0 else -1, 0, 0), n, 0.0, (0, y, z - z_centre)))
        return out, [None, (0.0, 0.0, -1.0)]

    def _setup_hinge(self, trace: ChainTrace, chain: str, n_core_helices: int, axis, shift) -> None:
        start = int(np.nonzero(trace.helix_index == n_core_helices - 1)[0][-1]) + 1
        loop = np.arange(start, int(np.nonzero(trace.helix_index == n_core_helices)[0][0]))  # the hinge loop
        pivot = int(loop[len(loop) // 2])
        self.pivot_residue = pivot + 1
        m = self.model
        self.domain_mask = (m.chain_id == chain) & (m.res_seq >= self.pivot_residue)
        self.hinge_axis = np.asarray(axis, float) / np.linalg.norm(axis)
        self.hinge_point_angstrom = trace.ca[pivot] + shift
        self.masks["moving_domain"] = self.domain_mask
        self._domain_text = f"{chain}:{self.pivot_residue}-{int(m.res_seq[self.domain_mask].max())}"
        self.info.update(
            hinge_axis=self.hinge_axis.tolist(),
            hinge_point_angstrom=self.hinge_point_angstrom.tolist(),
            pivot_residue=f"{chain}:{self.pivot_residue}",
        )

    def _rotate_domain(self, xyz: np.ndarray, t: np.ndarray) -> np.ndarray:
        R = rotation_matrices(self.hinge_axis, np.radians(self.max_angle_deg) * t)  # (B, 3, 3)
        p = self.hinge_point_angstrom
        xyz[:, self.domain_mask] = (xyz[:, self.domain_mask] - p) @ np.swapaxes(R, -1, -2) + p
        return xyz

    def coordinates_batch(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        xyz = np.repeat(self.neutral[None], len(t), axis=0)
        return self._rotate_domain(xyz, t)


class CoupledMotion(HingeMotion):
    """Hinge rotation (tilted axis) plus a correlated piston shift of a 2-helix hairpin (chain B)."""

    name = "coupled"

    def __init__(self, max_angle_deg: float = 15.0, max_shift_angstrom: float = 2.5, seed: int = 3):
        Motion.__init__(self)
        core = [_ring_helix(60.0 * k, 10.0, k % 2 == 0, 24) for k in (3, 2, 1, 0)]
        domain, bulges = self._domain(x_start=25.0, z_centre=12.0, n=18)
        trace_a = build_chain(core + domain, bulges=[None] * 4 + bulges)
        trace_b = build_chain([_ring_helix(240.0, 10.0, True, 24), _ring_helix(300.0, 10.0, False, 24)])
        self.model, shift = _centred({"A": trace_a, "B": trace_b}, seed)
        self._setup_hinge(trace_a, "A", n_core_helices=4, axis=(0.0, 0.5, 1.0), shift=shift)
        self.max_angle_deg = float(max_angle_deg)
        self.shift_direction = np.array([0.0, 0.0, 1.0])
        self.max_shift_angstrom = float(max_shift_angstrom)
        self.shift_mask = self.model.chain_id == "B"
        self.masks["shifting_helices"] = self.shift_mask
        self.description = (
            f"Domain rotation plus coupled helix shift (chain A: 4 core helices, hinge loop, 3-helix domain; "
            f"chain B: a 2-helix hairpin of the core). The domain ({self._domain_text}) turns rigidly by "
            f"{max_angle_deg:g}°·t about an axis through the Cα of residue A:{self.pivot_residue}, and chain B "
            f"shifts by {max_shift_angstrom:g} Å·t along the bundle axis, both driven by the same t."
        )
        self.info.update(
            max_angle_deg=self.max_angle_deg,
            max_shift_angstrom=self.max_shift_angstrom,
            shift_direction=self.shift_direction.tolist(),
        )

    def coordinates_batch(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        xyz = super().coordinates_batch(t)
        xyz[:, self.shift_mask] += (self.max_shift_angstrom * t)[:, None, None] * self.shift_direction
        return xyz


class BendMotion(Motion):
    """A long 5-helix bundle along z, bent in the xz-plane and twisted about z, smoothly along z."""

    name = "bend"

    def __init__(self, bend_deg: float = 60.0, twist_deg: float = 40.0, seed: int = 2):
        super().__init__()
        n = 40
        trace = build_chain([_ring_helix(72.0 * k, 8.5, k % 2 == 0, n, phase=40.0 * k) for k in range(5)])
        self.model, shift = _centred({"A": trace}, seed)
        self.length_angstrom = (n - 1) * 1.5
        self.bend_deg, self.twist_deg = float(bend_deg), float(twist_deg)
        self.axis_point_angstrom = shift  # the bundle axis (z) passed through 0 before centring
        self.description = (
            f"Long 5-helix bundle (chain A, {self.length_angstrom:g} Å helices along z) bent smoothly in the "
            f"xz-plane (angle between the end tangents {bend_deg:g}°·t, the middle fixed) and twisted about its "
            f"axis ({twist_deg:g}°·t end to end); no rigid parts. Cα–Cα bonds are restored to 3.80 Å and the "
            f"backbone rebuilt from the Cα trace."
        )
        self.info.update(
            bend_deg=self.bend_deg, twist_deg=self.twist_deg, length_angstrom=self.length_angstrom,
            axis_point_angstrom=shift.tolist(), axis=[0.0, 0.0, 1.0], bend_plane="xz",
        )

    def deform(self, xyz: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The smooth field on points ``(N, 3)`` for ``t`` (B,) -> ``(B, N, 3)`` (before bond restoration)."""
        p = np.asarray(xyz, float) - self.axis_point_angstrom
        x, y, z = p[None, :, 0], p[None, :, 1], p[None, :, 2]
        t = np.asarray(t, float).reshape(-1, 1)
        phi = np.radians(self.twist_deg) * t * z / self.length_angstrom
        x, y = x * np.cos(phi) - y * np.sin(phi), x * np.sin(phi) + y * np.cos(phi)
        alpha = np.radians(self.bend_deg) * t * z / self.length_angstrom  # tangent angle at height z
        half = alpha / 2
        one_minus_cos_over = half * np.sinc(half / np.pi) ** 2  # (1 - cos a)/a, safe at 0
        xb = x * np.cos(alpha) + z * one_minus_cos_over
        zb = z * np.sinc(alpha / np.pi) - x * np.sin(alpha)
        return np.stack([xb, np.broadcast_to(y, xb.shape), zb], -1) + self.axis_point_angstrom

    def coordinates_batch(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        ca = {}
        for c, trace in self.model.chains.items():
            ca[c] = restore_bonds(self.deform(trace.ca, t))
        return self.model.atoms_from_ca(ca)


def summarize(motion: Motion, n_t: int = 11) -> dict:
    """Sizes and motion amplitudes (Å) of a motion, JSON-able, from ``n_t`` values of t on [-1, 1]."""
    from scipy.spatial.distance import pdist

    m = motion.model
    t = np.linspace(-1.0, 1.0, n_t)
    xyz = motion.coordinates_batch(t)
    disp = np.linalg.norm(xyz[[0, -1]] - m.xyz, axis=-1)  # (2, N) at t = -1, +1
    bonds = []
    for c in m.chains:
        ca = xyz[:, m.ca_mask & (m.chain_id == c)]
        bonds.append(np.abs(np.linalg.norm(np.diff(ca, axis=1), axis=-1) - CA_CA_ANGSTROM).max())
    out = {
        "n_atoms": m.n_atoms,
        "n_residues": m.n_residues,
        "chains": {c: len(tr.ca) for c, tr in m.chains.items()},
        "max_extent_angstrom": round(float(max(pdist(x).max() for x in xyz)), 2),
        "max_radius_angstrom": round(float(np.linalg.norm(xyz, axis=-1).max()), 2),
        "max_displacement_at_t1_angstrom": round(float(disp.max()), 2),
        "rms_displacement_at_t1_angstrom": round(float(np.sqrt((disp**2).mean())), 2),
        "max_ca_ca_deviation_angstrom": float(max(bonds)),
    }
    for key, mask in motion.masks.items():
        c = xyz[:, mask].mean(1)
        out[f"{key}_centroid_travel_angstrom"] = round(float(np.linalg.norm(c[-1] - c[0])), 2)
        out[f"{key}_max_displacement_at_t1_angstrom"] = round(float(disp[:, mask].max()), 2)
    return out


#: name -> Motion class; the large assembly (:mod:`gmmplat.synthetic.assembly`, which builds on this
#: module) registers itself when the package is imported
MOTIONS: dict[str, type] = {"hinge": HingeMotion, "bend": BendMotion, "coupled": CoupledMotion}


@functools.lru_cache(maxsize=None)
def _cached(name: str) -> Motion:
    return MOTIONS[name]()


def get_motion(name: str) -> Motion:
    """The dataset's :class:`Motion` (built once per process; treat it as read-only)."""
    from ..errors import ConfigError

    if name not in DATASETS + LARGE_DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS + LARGE_DATASETS)}")
    return _cached(name)
