"""The atomic model of a synthetic molecule: backbone atoms placed from Cα traces.

:func:`backbone_from_ca` places N, C, O and Cβ from a chain's Cα trace with
ideal trans-peptide geometry (Engh & Huber); :class:`AtomicModel` holds the
atoms of several chains (backbone plus Cβ) and rebuilds them from moved Cα
traces.  The traces themselves are built in :mod:`gmmplat.synthetic.structures`.
All lengths in Å.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import gemmi
import numpy as np

ELECTRONS = {"H": 1.0, "C": 6.0, "N": 7.0, "O": 8.0, "S": 16.0}

HELIX_CORE = ["LEU", "ILE", "VAL", "ALA", "MET", "PHE"]  # heptad positions a, d
HELIX_SURFACE = ["GLU", "LYS", "ALA", "GLN", "ARG", "SER", "GLU", "LYS"]
LOOP_RESIDUES = ["GLY", "SER", "ASN", "PRO", "ASP", "GLY", "THR"]


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _peptide_template() -> dict[str, np.ndarray]:
    """Ideal trans peptide (Engh & Huber) in the frame x: Cα_i → Cα_i+1, y: towards O.

    Returns 2D coordinates (Å, from Cα_i) of C_i, O_i, N_i+1 and the Cα–Cα length.
    """
    def rot(v, deg):
        c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
        return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])

    ca = np.zeros(2)
    c = np.array([1.525, 0.0])
    n = c + 1.329 * rot(-(c - ca) / 1.525, -116.2)  # CA-C-N 116.2 deg
    ca2 = n + 1.458 * rot((c - n) / 1.329, 121.7)  # C-N-CA 121.7 deg, trans
    o = c + 1.231 * rot((ca - c) / 1.525, 120.1)  # CA-C-O 120.1 deg, opposite side to N
    xdir = ca2 / np.linalg.norm(ca2)
    ydir = np.array([-xdir[1], xdir[0]])
    frame = np.stack([xdir, ydir])
    pts = {k: frame @ v for k, v in {"C": c, "O": o, "N": n}.items()}
    if pts["O"][1] < 0:
        pts = {k: v * np.array([1.0, -1.0]) for k, v in pts.items()}
    return pts


_PEPTIDE = _peptide_template()


def _extend(ca: np.ndarray, k: int) -> np.ndarray:
    """Add ``k`` virtual Cα at each end by screw extrapolation (exact for a helix). ``(..., n+2k, 3)``."""
    for _ in range(k):
        ca = np.concatenate([_screw(ca[..., [3, 2, 1], :], ca[..., [2, 1, 0], :]), ca], axis=-2)
        ca = np.concatenate([ca, _screw(ca[..., [-4, -3, -2], :], ca[..., [-3, -2, -1], :])], axis=-2)
    return ca


def _screw(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rigid transform best mapping points ``src`` (…, 3, 3) onto ``dst``, applied to ``dst[..., 2]``."""
    cs, cd = src.mean(-2, keepdims=True), dst.mean(-2, keepdims=True)
    H = np.swapaxes(src - cs, -1, -2) @ (dst - cd)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.swapaxes(Vt, -1, -2) @ np.swapaxes(U, -1, -2)))
    S = np.broadcast_to(np.eye(3), H.shape).copy()
    S[..., 2, 2] = d
    R = np.swapaxes(Vt, -1, -2) @ S @ np.swapaxes(U, -1, -2)
    p = dst[..., 2:3, :]
    return (p - cs) @ np.swapaxes(R, -1, -2) + cd


def backbone_from_ca(ca: np.ndarray, turn_deg: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Backbone atoms from a chain's Cα trace ``(..., n, 3)`` (n ≥ 4): N, CA, C, O, CB each ``(..., n, 3)``.

    Each peptide plane contains Cα_i and Cα_i+1 and is turned about that line so
    the carbonyl points along ``b_i × b_i+1`` (b = Cα bisectors), which is the
    helix axis (N → C) in an ideal helix; ``turn_deg`` ``(n+1,)`` (peptides
    -1..n-1) turns each peptide further about the Cα–Cα line.  Cβ is placed 1.53 Å from Cα in the
    ideal tetrahedral direction.
    """
    ext = _extend(ca, 2)  # (..., n+4, 3)
    bis = (ext[..., :-2, :] - ext[..., 1:-1, :]) + (ext[..., 2:, :] - ext[..., 1:-1, :])  # residues -1..n
    ref = np.cross(bis[..., :-1, :], bis[..., 1:, :])  # peptides -1..n-1 (between residue j and j+1)
    a, b = ext[..., 1:-2, :], ext[..., 2:-1, :]  # Cα_j, Cα_j+1 for peptides j = -1..n-1
    x = _unit(b - a)
    y = _unit(ref - x * np.sum(ref * x, -1, keepdims=True))
    if turn_deg is not None:
        turn = np.radians(np.asarray(turn_deg, dtype=np.float64))[:, None]
        y = np.cos(turn) * y + np.sin(turn) * np.cross(x, y)

    def place(name):
        p = _PEPTIDE[name]
        return a + p[0] * x + p[1] * y

    C, O, Nn = place("C"), place("O"), place("N")
    N = Nn[..., :-1, :]  # N of residue j+1 lies in peptide j
    C, O = C[..., 1:, :], O[..., 1:, :]
    bv, cv = ca - N, C - ca
    av = np.cross(bv, cv)
    CB = _unit(-0.58273431 * av + 0.56802827 * bv - 0.54067466 * cv)
    CB = ca + 1.53 * CB
    return {"N": N, "CA": np.array(ca, dtype=np.float64), "C": C, "O": O, "CB": CB}


def _nca_c_deg(bb: dict[str, np.ndarray]) -> np.ndarray:
    u, v = _unit(bb["N"] - bb["CA"]), _unit(bb["C"] - bb["CA"])
    return np.degrees(np.arccos(np.clip(np.sum(u * v, -1), -1, 1)))


def _choose_turns(ca: np.ndarray, ss: np.ndarray) -> np.ndarray:
    """Turn angles (deg) for peptides touching loops: ideal N-CA-C (111°) and no close contacts.

    Coordinate descent over 30° steps, two sweeps; peptides inside helices keep 0.
    """
    n = len(ca)
    turn = np.zeros(n + 1)
    loop = np.concatenate([[False], ss == "L", [False]])  # residues -1..n
    loop[1:-1] |= loop[:-2] | loop[2:]  # and the helix residues next to loops
    peptides = np.nonzero(loop[:-1] | loop[1:])[0]  # peptide p joins residues p-1 and p
    for _ in range(2):
        for p in peptides:
            lo, hi = max(p - 4, 0), min(p + 4, n)
            w0, w1 = max(lo - 3, 0), min(hi + 3, n)  # window with true neighbours around lo..hi
            res = np.repeat(np.arange(lo, hi), 5)
            far = np.abs(res[:, None] - res[None, :]) >= 2
            costs = []
            for angle in np.arange(0.0, 360.0, 30.0):
                turn[p] = angle
                bb = backbone_from_ca(ca[w0:w1], turn[w0 : w1 + 1])
                atoms = np.stack([bb[k][lo - w0 : hi - w0] for k in ("N", "CA", "C", "O", "CB")], 1).reshape(-1, 3)
                d = np.linalg.norm(atoms[:, None] - atoms[None], axis=-1)[far]
                angle_cost = np.sum((_nca_c_deg(bb)[max(p - 1, 0) - w0 : p + 1 - w0] - 111.0) ** 2) / 100.0
                costs.append(angle_cost + 100.0 * np.sum(np.clip(3.0 - d, 0, None) ** 2))
            turn[p] = 30.0 * int(np.argmin(costs))
    return turn


@dataclass
class ChainTrace:
    """A chain's Cα trace with secondary-structure labels.

    Attributes:
        ca: (n, 3) Å.  ss: (n,) "H" helix / "L" loop.  helix_index: (n,) index of
        the helix a residue belongs to, -1 for loops.
    """

    ca: np.ndarray
    ss: np.ndarray
    helix_index: np.ndarray


@dataclass
class AtomicModel:
    """Atoms of chains of backbone-plus-Cβ residues, in a fixed order (chain, residue, N CA C O CB).

    Attributes:
        chains: {chain id: ChainTrace} (the Cα traces the atoms were built from).
        xyz: (N_atoms, 3) Å.  element, atom_name, res_name, chain_id: (N_atoms,) str.
        res_seq: (N_atoms,) int, 1-based per chain.  b_factor: (N_atoms,) Å².
        residue_names: {chain id: (n,) str}.
        turns: {chain id: (n+1,) degrees} peptide turns (see :func:`backbone_from_ca`),
            chosen at construction for loop peptides (ideal N-CA-C, no close contacts).
    """

    chains: dict[str, ChainTrace]
    residue_names: dict[str, np.ndarray]
    turns: dict[str, np.ndarray] | None = None
    xyz: np.ndarray = field(init=False)
    element: np.ndarray = field(init=False)
    atom_name: np.ndarray = field(init=False)
    res_name: np.ndarray = field(init=False)
    chain_id: np.ndarray = field(init=False)
    res_seq: np.ndarray = field(init=False)
    b_factor: np.ndarray = field(init=False)

    def __post_init__(self):
        self._keep = {}
        if self.turns is None:
            self.turns = {c: _choose_turns(t.ca, t.ss) for c, t in self.chains.items()}
        names, elem, rname, cid, rseq, bfac = [], [], [], [], [], []
        for c, trace in self.chains.items():
            keep = np.ones((len(trace.ca), 5), dtype=bool)
            keep[:, 4] = self.residue_names[c] != "GLY"
            self._keep[c] = keep.reshape(-1)
            for i, (rn, ss) in enumerate(zip(self.residue_names[c], trace.ss)):
                for j, an in enumerate(("N", "CA", "C", "O", "CB")):
                    if keep[i, j]:
                        names.append(an), elem.append(an[0]), rname.append(rn), cid.append(c)
                        rseq.append(i + 1), bfac.append(20.0 if ss == "H" else 40.0)
        self.atom_name, self.element, self.res_name = np.array(names), np.array(elem), np.array(rname)
        self.chain_id, self.res_seq, self.b_factor = np.array(cid), np.array(rseq), np.array(bfac)
        self.xyz = self.atoms_from_ca({c: t.ca for c, t in self.chains.items()})

    @classmethod
    def from_traces(cls, chains: dict[str, ChainTrace], seed: int = 0) -> "AtomicModel":
        """Assign residue names (heptad-like helices, polar/Gly loops) deterministically from ``seed``."""
        rng = np.random.default_rng(seed)
        names = {}
        for c, trace in chains.items():
            out = []
            for k, ss in enumerate(trace.ss):
                pool = LOOP_RESIDUES if ss == "L" else (HELIX_CORE if k % 7 in (0, 3) else HELIX_SURFACE)
                out.append(pool[rng.integers(len(pool))])
            names[c] = np.array(out)
        return cls(chains, names)

    @property
    def n_atoms(self) -> int:
        return len(self.xyz)

    @property
    def n_residues(self) -> int:
        return sum(len(t.ca) for t in self.chains.values())

    @property
    def electrons(self) -> np.ndarray:
        """(N_atoms,) electron count of each atom's element (C 6, N 7, O 8, S 16)."""
        return np.array([ELECTRONS[e] for e in self.element])

    @property
    def ca_mask(self) -> np.ndarray:
        return self.atom_name == "CA"

    def atoms_from_ca(self, ca: dict[str, np.ndarray]) -> np.ndarray:
        """All atom coordinates ``(..., N_atoms, 3)`` rebuilt from Cα traces ``{chain: (..., n, 3)}``."""
        parts = []
        for c in self.chains:
            bb = backbone_from_ca(ca[c], self.turns[c])
            stacked = np.stack([bb[k] for k in ("N", "CA", "C", "O", "CB")], axis=-2)  # (..., n, 5, 3)
            flat = stacked.reshape(stacked.shape[:-3] + (-1, 3))
            parts.append(flat[..., self._keep[c], :])
        return np.concatenate(parts, axis=-2)

    def residue_ranges(self, atom_mask: np.ndarray) -> dict[str, list[list[int]]]:
        """Residues holding any selected atom, as ``{chain: [[first, last], ...]}`` (1-based, inclusive)."""
        out: dict[str, list[list[int]]] = {}
        for c in self.chains:
            res = np.unique(self.res_seq[(self.chain_id == c) & atom_mask])
            runs: list[list[int]] = []
            for r in res.tolist():
                if runs and r == runs[-1][1] + 1:
                    runs[-1][1] = r
                else:
                    runs.append([r, r])
            if runs:
                out[c] = runs
        return out

    def to_structure(self, xyz: np.ndarray | None = None, name: str = "synthetic") -> gemmi.Structure:
        """A gemmi.Structure (one model, P1 without cell) with coordinates ``xyz`` (default: ``self.xyz``)."""
        xyz = self.xyz if xyz is None else np.asarray(xyz, dtype=np.float64)
        st = gemmi.Structure()
        st.name = name
        model = gemmi.Model(1)
        k = 0
        for c, trace in self.chains.items():
            chain = gemmi.Chain(c)
            for i, rn in enumerate(self.residue_names[c]):
                res = gemmi.Residue()
                res.name, res.seqid, res.entity_type = rn, gemmi.SeqId(i + 1, " "), gemmi.EntityType.Polymer
                while k < len(xyz) and self.chain_id[k] == c and self.res_seq[k] == i + 1:
                    atom = gemmi.Atom()
                    atom.name, atom.element = self.atom_name[k], gemmi.Element(self.element[k])
                    atom.pos, atom.b_iso, atom.occ = gemmi.Position(*xyz[k]), float(self.b_factor[k]), 1.0
                    res.add_atom(atom)
                    k += 1
                chain.add_residue(res)
            model.add_chain(chain)
        st.add_model(model)
        st.setup_entities()
        return st
