"""Domain masks: boolean selections of Gaussians, stored in the GMM as extras ``mask__<name> (N,)``.

Three ways to select (each raises on a selection that matches nothing):

* :func:`mask_from_map`: Gaussians whose centre falls in a volumetric MRC mask
  (value above ``threshold``, nearest voxel). The mask must have the GMM's box
  and pixel size (it is a mask drawn on the consensus map's grid; its header
  origin is not used, since RELION masks often carry none).
* :func:`mask_from_atoms`: Gaussians built from selected atoms of the atomic
  model, through the extra ``atom_to_gaussian``; a Gaussian belongs when at
  least half of its atoms are selected (k-means centres may straddle a domain
  boundary). Pseudoatoms never belong.
* :func:`mask_from_indices`: Gaussian indices.

Command-line spec (``--mask NAME=SPEC``, :func:`apply_mask_spec`):
``chain:A`` (whole chain), ``chain:A:120-200`` or ``residues:A:120-200,B:1-20``
(author residue numbers, the syntax of :mod:`gmmplat.io.models`),
``index:0-99,150`` (Gaussian indices, ranges inclusive), ``map:PATH`` or
``map:PATH@THRESHOLD``.

Steps select by name (:func:`subset_mask`): ``"A"``, ``"!A"`` (outside A), ``"A,B"`` (in A or B),
``"!A,B"`` (in neither); decoders and the elastic-network regularizer take such a ``subset``.
"""
from __future__ import annotations

import os
import re

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..io.mrc import MapData, read_map
from .gmm import GMM, XYZ

MASK_PREFIX = "mask__"
_NAME = re.compile(r"^[A-Za-z0-9_\-]+$")


def mask_from_map(gmm: GMM, mask: MapData, threshold: float = 0.5, path=None) -> np.ndarray:
    """Bool ``(N,)``: Gaussian centres on voxels of ``mask`` above ``threshold``.

    Raises:
        InputError: box or pixel size differ from the GMM's, or no Gaussian selected.
    """
    shape = mask.data.shape
    if shape != (gmm.box,) * 3:
        raise InputError(path, f"mask box {shape[2]}x{shape[1]}x{shape[0]} differs from the GMM's box "
                               f"{gmm.box}x{gmm.box}x{gmm.box}")
    if abs(mask.voxel_size_angstrom - gmm.pixel_size_angstrom) > 1e-3 * gmm.pixel_size_angstrom:
        raise InputError(path, f"mask pixel size {mask.voxel_size_angstrom:g} Å differs from the GMM's "
                               f"{gmm.pixel_size_angstrom:g} Å")
    ijk = np.rint(gmm.params[:, XYZ].detach().double().numpy() / gmm.pixel_size_angstrom).astype(np.int64) + gmm.box // 2
    inside = np.all((ijk >= 0) & (ijk < gmm.box), axis=1)
    sel = np.zeros(gmm.n, dtype=bool)
    i, j, k = ijk[inside].T
    sel[inside] = mask.data[k, j, i] > threshold
    if not sel.any():
        raise InputError(path, f"mask selects no Gaussian (no Gaussian centre on a voxel above {threshold:g})")
    return sel


def mask_from_atoms(gmm: GMM, atom_index: np.ndarray, what: str = "atom selection",
                    min_fraction: float = 0.5) -> np.ndarray:
    """Bool ``(N,)``: Gaussians with at least ``min_fraction`` of their atoms in ``atom_index``.

    Args:
        atom_index: indices into the model file's full atom list (``AtomModel.atom_index``).
        what: describes the selection in errors.
    """
    if "atom_to_gaussian" not in gmm.extras:
        raise ConfigError(f"{what}: this GMM was built without an atomic model (no atom_to_gaussian); "
                          "use a map or index mask")
    a2g = np.asarray(gmm.extras["atom_to_gaussian"], dtype=np.int64)
    idx = np.asarray(atom_index, dtype=np.int64)
    if len(idx) == 0:
        raise ConfigError(f"{what} matches no atoms")
    if idx.max() >= len(a2g):
        raise ConfigError(f"{what}: atom indices beyond the {len(a2g)} atoms the GMM was built from (another model?)")
    total = np.bincount(a2g[a2g >= 0], minlength=gmm.n)
    g = a2g[idx]
    chosen = np.bincount(g[g >= 0], minlength=gmm.n)
    sel = (total > 0) & (chosen >= min_fraction * np.maximum(total, 1))
    if not sel.any():
        raise ConfigError(f"{what} matches {len(idx)} atoms but none of them is in the GMM")
    return sel


def mask_from_indices(gmm: GMM, indices) -> np.ndarray:
    """Bool ``(N,)`` from Gaussian indices (an error if empty or out of range)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(idx) == 0:
        raise ConfigError("index mask selects no Gaussian")
    if idx.min() < 0 or idx.max() >= gmm.n:
        raise ConfigError(f"Gaussian indices must be in 0..{gmm.n - 1}, got {int(idx.min())}..{int(idx.max())}")
    sel = np.zeros(gmm.n, dtype=bool)
    sel[idx] = True
    return sel


def add_mask(gmm: GMM, name: str, mask: np.ndarray) -> None:
    """Store ``mask`` (bool ``(N,)``, not empty) as the extra ``mask__<name>``."""
    if not _NAME.match(name):
        raise ConfigError(f"mask name {name!r} must use letters, digits, '_' or '-'")
    m = np.asarray(mask, dtype=bool).reshape(-1)
    if m.shape != (gmm.n,):
        raise ConfigError(f"mask {name!r} has {m.shape[0]} entries for {gmm.n} Gaussians")
    if not m.any():
        raise ConfigError(f"mask {name!r} selects no Gaussian")
    gmm.extras[MASK_PREFIX + name] = m


def parse_indices(text: str) -> np.ndarray:
    """``"0-99,150"`` -> int64 array (ranges inclusive)."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if m is None:
            raise ConfigError(f"bad Gaussian index range {item!r} (use e.g. 0-99,150)")
        a, b = int(m[1]), int(m[2] or m[1])
        if b < a:
            raise ConfigError(f"bad Gaussian index range {item!r} (end before start)")
        out.extend(range(a, b + 1))
    return np.asarray(out, dtype=np.int64)


def parse_mask_spec(text: str) -> tuple[str, str, str]:
    """``"NAME=KIND:VALUE"`` -> ``(name, kind, value)``; kind in chain, residues, index, map."""
    name, sep, spec = text.partition("=")
    kind, sep2, value = spec.partition(":")
    if not sep or not sep2 or not name.strip() or not value.strip():
        raise ConfigError(f"bad mask {text!r}: use NAME=chain:A:120-200, NAME=residues:A:1-50, "
                          "NAME=index:0-99 or NAME=map:mask.mrc[@threshold]")
    kind = kind.strip().lower()
    if kind not in ("chain", "residues", "index", "map"):
        raise ConfigError(f"bad mask {text!r}: unknown kind {kind!r} (chain, residues, index or map)")
    return name.strip(), kind, value.strip()


def apply_mask_spec(gmm: GMM, text: str, model_path: str | os.PathLike | None = None) -> np.ndarray:
    """Parse ``NAME=SPEC``, select, store as ``mask__NAME`` and return the mask."""
    from ..io.models import read_model

    name, kind, value = parse_mask_spec(text)
    if kind == "index":
        sel = mask_from_indices(gmm, parse_indices(value))
    elif kind == "map":
        path, _, thr = value.rpartition("@") if "@" in value else (value, "", "")
        try:
            threshold = float(thr) if thr else 0.5
        except ValueError:
            raise ConfigError(f"bad mask {text!r}: threshold {thr!r} is not a number") from None
        sel = mask_from_map(gmm, read_map(path), threshold, path)
    else:
        if model_path is None:
            raise ConfigError(f"mask {name!r} selects atoms ({kind}:{value}) but no atomic model was given")
        atoms = read_model(model_path, selection="all", residues=value)
        sel = mask_from_atoms(gmm, atoms.atom_index, f"mask {name!r} ({kind}:{value})")
    add_mask(gmm, name, sel)
    return sel


def subset_mask(neutral: GMM, subset: str | None, where: str) -> torch.Tensor | None:
    """``None`` / ``"NAME"`` / ``"!NAME"`` -> bool mask ``(N,)`` over the neutral GMM's Gaussians.

    Several names separated by commas are their union: ``"A,B"`` (in A or B), ``"!A,B"`` (in neither).
    """
    if subset is None:
        return None
    invert = subset.startswith("!")
    names = [n.strip() for n in (subset[1:] if invert else subset).split(",")]
    masks = neutral.masks()
    union = None
    for name in names:
        if name not in masks:
            raise ConfigError(f"{where}.subset: no mask {name!r} in the neutral GMM; known: "
                              f"{', '.join(sorted(masks)) or 'none'}")
        m = torch.as_tensor(np.asarray(masks[name]), dtype=torch.bool).flatten()
        union = m if union is None else union | m
    return ~union if invert else union
