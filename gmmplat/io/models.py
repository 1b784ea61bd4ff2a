"""Atomic models (PDB / mmCIF) read and written with gemmi.

Only the first model of a file is read. Atoms are numbered in file order
(chain, residue, atom) over *all* atoms of that model, alternate locations
included: :attr:`AtomModel.atom_index` refers to that full list, which is also
what :func:`write_models` frames replace.

Selections (documented in ``docs/io.md``):

* ``kind``: ``"all"``, ``"heavy"`` (no hydrogen/deuterium), ``"ca"`` (atoms named
  CA that are carbon, not calcium), ``"backbone"`` (protein N, CA, C, O; not
  waters, not ions).
* ``chains``: chain names, e.g. ``["A", "B"]`` or ``"A,B"``.
* ``residues``: comma-separated ranges, ``"A:10-50,B:1-20"``; an item is
  ``CHAIN:FROM-TO``, ``CHAIN:NUM``, ``CHAIN`` (whole chain) or ``FROM-TO`` /
  ``NUM`` (any chain); numbers are author residue numbers (insertion codes
  ignored) and may be negative (``A:-5-10``).

Every selection keeps only the first alternate location of each residue.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import gemmi
import numpy as np

from gmmplat.errors import InputError
from gmmplat.io.atomic import atomic_write_path

__all__ = ["AtomModel", "read_model", "select_atoms", "write_models", "SELECTION_KINDS"]

SELECTION_KINDS = ("all", "heavy", "ca", "backbone")
_BACKBONE = {"N": "N", "CA": "C", "C": "C", "O": "O"}  # atom name -> element
_WATERS = {"HOH", "WAT", "DOD", "H2O"}
_RANGE = re.compile(r"^(?:(?P<chain>[^:,\s]+):)?(?P<start>-?\d+)(?:-(?P<end>-?\d+))?$")


@dataclass
class AtomModel:
    """Selected atoms of the first model of a structure (N selected atoms).

    Attributes:
        xyz_angstrom: float64 ``(N, 3)``, world coordinates x, y, z, Å.
        element: str ``(N,)`` element symbols (``"C"``, ``"Se"``).
        atom_name: str ``(N,)``.
        residue_name: str ``(N,)``.
        residue_number: int64 ``(N,)`` author residue numbers.
        chain_id: str ``(N,)``.
        b_factor: float64 ``(N,)``, Å².
        atom_index: int64 ``(N,)``, positions in the full atom list of model 1.
        structure: the gemmi Structure (first model only), template for writing.
        path: the file read.
        selection: description of the selection applied.
        altloc_first: bool ``(n_atoms_total,)`` over the full list, False for
            non-first alternate locations (used by further selections).
    """

    xyz_angstrom: np.ndarray
    element: np.ndarray
    atom_name: np.ndarray
    residue_name: np.ndarray
    residue_number: np.ndarray
    chain_id: np.ndarray
    b_factor: np.ndarray
    atom_index: np.ndarray
    structure: gemmi.Structure = field(repr=False)
    path: str = ""
    selection: str = "all"
    altloc_first: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.atom_index)

    @property
    def n_atoms_total(self) -> int:
        """Number of atoms in the full first model (alternate locations included)."""
        return int(self.structure[0].count_atom_sites())


def read_model(
    path: str | os.PathLike,
    selection: str = "all",
    chains: Sequence[str] | str | None = None,
    residues: str | None = None,
) -> AtomModel:
    """Read the first model of a PDB/mmCIF file and select atoms.

    Args:
        path: ``.pdb``, ``.cif``, ``.mmcif`` (optionally ``.gz``).
        selection: one of :data:`SELECTION_KINDS`.
        chains, residues: optional filters, see the module docstring.

    Raises:
        InputError: missing file, unreadable file, empty structure, unknown
            selection, selection matching no atoms.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a regular file")
    try:
        st = gemmi.read_structure(str(path))
    except Exception as exc:  # gemmi raises RuntimeError/ValueError/IOError with long texts
        detail = str(exc).replace(f"{path}:", "line ")  # gemmi prefixes the path
        raise InputError(path, f"cannot read atomic model ({detail})") from None
    if len(st) == 0 or st[0].count_atom_sites() == 0:
        raise InputError(path, "empty structure (no atoms in the first model)")
    while len(st) > 1:
        del st[len(st) - 1]
    return select_atoms(_full_model(st, str(path)), kind=selection, chains=chains, residues=residues)


def _full_model(st: gemmi.Structure, path: str) -> AtomModel:
    cols: dict[str, list] = {k: [] for k in ("xyz", "el", "name", "res", "num", "chain", "b", "first")}
    for chain in st[0]:
        for residue in chain:
            first_alt = None
            for atom in residue:
                alt = atom.altloc
                if alt != "\x00" and first_alt is None:
                    first_alt = alt
                p = atom.pos
                cols["xyz"].append((p.x, p.y, p.z))
                cols["el"].append(atom.element.name)
                cols["name"].append(atom.name)
                cols["res"].append(residue.name)
                cols["num"].append(residue.seqid.num)
                cols["chain"].append(chain.name)
                cols["b"].append(atom.b_iso)
                cols["first"].append(alt == "\x00" or alt == first_alt)
    model = AtomModel(
        xyz_angstrom=np.asarray(cols["xyz"], dtype=np.float64).reshape(-1, 3),
        element=np.asarray(cols["el"], dtype=str),
        atom_name=np.asarray(cols["name"], dtype=str),
        residue_name=np.asarray(cols["res"], dtype=str),
        residue_number=np.asarray(cols["num"], dtype=np.int64),
        chain_id=np.asarray(cols["chain"], dtype=str),
        b_factor=np.asarray(cols["b"], dtype=np.float64),
        atom_index=np.arange(len(cols["xyz"]), dtype=np.int64),
        structure=st,
        path=path,
        altloc_first=np.asarray(cols["first"], dtype=bool),
    )
    return model


def select_atoms(
    model: AtomModel,
    kind: str = "all",
    chains: Sequence[str] | str | None = None,
    residues: str | None = None,
) -> AtomModel:
    """Subset of ``model``'s atoms (see the module docstring for the syntax).

    Returns:
        A new :class:`AtomModel` sharing ``structure``; ``atom_index`` still
        refers to the full atom list.

    Raises:
        InputError: unknown kind, bad residue range, or no atom selected.
    """
    description = _describe(kind, chains, residues)
    if kind not in SELECTION_KINDS:
        raise InputError(model.path or None,
                         f"unknown atom selection {kind!r} (use one of {', '.join(SELECTION_KINDS)})")
    keep = np.ones(len(model), dtype=bool)
    if model.altloc_first is not None:
        keep &= model.altloc_first[model.atom_index]
    hydrogen = np.isin(np.char.upper(model.element), ["H", "D"])
    if kind == "heavy":
        keep &= ~hydrogen
    elif kind == "ca":
        keep &= (model.atom_name == "CA") & (np.char.upper(model.element) == "C")
    elif kind == "backbone":
        expected = np.array([_BACKBONE.get(n, "") for n in model.atom_name.tolist()], dtype=str)
        keep &= (np.char.upper(model.element) == expected) & ~np.isin(model.residue_name, list(_WATERS))
    if chains is not None:
        names = [c.strip() for c in chains.split(",")] if isinstance(chains, str) else list(chains)
        keep &= np.isin(model.chain_id, names)
    if residues is not None:
        keep &= _residue_mask(model, residues)
    if not keep.any():
        raise InputError(model.path or None, f"atom selection {description} matches no atoms")
    sub = replace(
        model,
        xyz_angstrom=model.xyz_angstrom[keep], element=model.element[keep], atom_name=model.atom_name[keep],
        residue_name=model.residue_name[keep], residue_number=model.residue_number[keep],
        chain_id=model.chain_id[keep], b_factor=model.b_factor[keep], atom_index=model.atom_index[keep],
        selection=description if model.selection == "all" else f"{model.selection} & {description}",
    )
    return sub


def _describe(kind: str, chains, residues) -> str:
    text = repr(kind)
    if chains is not None:
        text += f" chains={chains if isinstance(chains, str) else ','.join(chains)!r}"
    if residues is not None:
        text += f" residues={residues!r}"
    return text


def _residue_mask(model: AtomModel, spec: str) -> np.ndarray:
    mask = np.zeros(len(model), dtype=bool)
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise InputError(model.path or None, f"empty residue selection {spec!r}")
    for item in items:
        m = _RANGE.match(item)
        if m is None:  # a bare chain name
            if ":" in item or "-" in item:
                raise InputError(model.path or None, f"bad residue range {item!r} (use e.g. A:10-50, A:12, A or 10-50)")
            mask |= model.chain_id == item
            continue
        start = int(m["start"])
        end = int(m["end"]) if m["end"] is not None else start
        part = (model.residue_number >= start) & (model.residue_number <= end)
        if m["chain"] is not None:
            part &= model.chain_id == m["chain"]
        mask |= part
    return mask


def write_models(path: str | os.PathLike, template: AtomModel, frames_xyz: np.ndarray) -> None:
    """Write frames as a multi-model PDB (``.pdb``) or mmCIF (``.cif``, ``.mmcif``), atomically.

    Args:
        path: destination; the suffix picks the format.
        template: a model read by :func:`read_model` (its structure is the template).
        frames_xyz: float ``(F, N, 3)`` world coordinates, Å; with ``N`` the
            full atom count (``template.n_atoms_total``) every atom is
            written; with ``N == len(template)`` only the selected atoms are.
    """
    frames = np.asarray(frames_xyz, dtype=np.float64)
    if frames.ndim == 2:
        frames = frames[None]
    suffix = Path(path).suffix.lower()
    if suffix not in (".pdb", ".cif", ".mmcif"):
        raise ValueError(f"cannot tell the model format from suffix {suffix!r} (use .pdb, .cif or .mmcif)")
    base = template.structure.clone()
    while len(base) > 1:
        del base[len(base) - 1]
    n_total = base[0].count_atom_sites()
    if frames.ndim != 3 or frames.shape[2] != 3 or frames.shape[1] not in (n_total, len(template)):
        raise ValueError(f"frames_xyz must be (F, {n_total} or {len(template)}, 3), got {frames.shape}")
    if frames.shape[1] != n_total:
        _keep_only(base, set(template.atom_index.tolist()))
    if suffix == ".pdb" and (frames.min(initial=0) <= -1000 or frames.max(initial=0) >= 10000):
        raise ValueError("coordinates outside the PDB format's range (-999.999 to 9999.999 Å); write .cif")
    out = base.clone()
    del out[0]
    for f, xyz in enumerate(frames):
        model = base[0].clone()
        atoms = [a for ch in model for res in ch for a in res]
        for atom, (x, y, z) in zip(atoms, xyz.tolist()):
            atom.pos = gemmi.Position(x, y, z)
        model.num = f + 1
        out.add_model(model)
    with atomic_write_path(path) as tmp:
        if suffix == ".pdb":
            options = gemmi.PdbWriteOptions()
            options.cryst1_record = out.cell.is_crystal()  # no dummy 1 Å cell for cryo-EM models
            out.write_pdb(str(tmp), options)
        else:
            out.setup_entities()
            out.make_mmcif_document().write_file(str(tmp))


def _keep_only(st: gemmi.Structure, keep: set[int]) -> None:
    """Delete from model 1 every atom whose file-order index is not in ``keep``."""
    index = 0
    for chain in st[0]:
        for residue in chain:
            doomed = []
            for i in range(len(residue)):
                if index not in keep:
                    doomed.append(i)
                index += 1
            for i in reversed(doomed):
                del residue[i]
        for r in reversed(range(len(chain))):
            if len(chain[r]) == 0:
                del chain[r]
    st.remove_empty_chains()
