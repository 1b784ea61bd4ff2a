"""Morphing an atomic model with the decoded GMM (paper: TRPV1 results, Discussion).

The atomic model is treated as one more layer of the hierarchical GMM: a
transition matrix ``T = transition_matrix(gmm_xyz (N, 3), atom_xyz (n_atoms, 3),
s_angstrom)`` (``gmmplat.neutral.hierarchy``; columns sum to 1) ties every atom to the
Gaussians around it.  Two ways to carry the GMM's motion onto the atoms:

* ``mode="linear"`` (the paper): ``atom_xyz(z) = atom_xyz_neutral + Tᵀ · Δxyz(z)``,
  a weighted mean of the Gaussians' position offsets.
* ``mode="local_rigid"`` (default): each atom follows the best rigid motion (weighted
  Kabsch, weights = its column of T) of its Gaussians,
  ``x' = ν̄ + R (x − μ̄)`` with ``μ̄ = Σ w μ``, ``ν̄ = Σ w ν`` — identical to
  ``linear`` for translations, and exact for rotations of a domain, where the
  linear blend shrinks the lever arm of atoms that sit off their Gaussians'
  centroid (docs/benchmarks.md, "Morph modes").

Atom coordinates are taken into the GMM's box frame (world − box centre) for
the transition and written back in world coordinates, so the morphed models
overlay the consensus map in ChimeraX.  To keep memory bounded for large
models each atom keeps its ``top_k`` largest weights (renormalised to sum 1;
with ``top_k >= N`` the transition is used as is).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..io.models import AtomModel, write_models
from ..model.gmm import AMPLITUDE, GMM, WIDTH, XYZ
from ..neutral.hierarchy import transition_matrix

DecodeFn = Callable[[torch.Tensor], torch.Tensor]
MORPH_MODES = ("local_rigid", "linear")
#: Kabsch regulariser: ``H + (REG · tr C + REG_ABS) I`` keeps degenerate neighbourhoods at R = I.
REG, REG_ABS = 1e-3, 1e-6


def default_s_angstrom(gmm_xyz: np.ndarray) -> float:
    """Width of the GMM→atom transition: the median nearest-neighbour spacing of the Gaussians (Å)."""
    from scipy.spatial import cKDTree

    xyz = np.asarray(gmm_xyz, dtype=np.float64)
    if len(xyz) < 2:
        return 5.0
    d, _ = cKDTree(xyz).query(xyz, k=2)
    return float(max(np.median(d[:, 1]), 0.5))


def check_overlap(model: AtomModel, gmm: GMM, atom_xyz_box: np.ndarray, reach_angstrom: float,
                  min_fraction: float = 0.5) -> None:
    """Raise a one-line :class:`InputError` when fewer than ``min_fraction`` of the atoms lie
    within ``reach_angstrom`` of a Gaussian centre; the message gives the offset of the
    model's centre from the GMM's (world Å)."""
    from scipy.spatial import cKDTree

    gmm_xyz = gmm.params[:, XYZ].detach().cpu().double().numpy()
    d, _ = cKDTree(gmm_xyz).query(atom_xyz_box, k=1)
    fraction = float(np.mean(d <= reach_angstrom))
    if fraction < min_fraction:
        w = gmm.params[:, AMPLITUDE].detach().cpu().double().abs().numpy()
        gmm_centre = (w[:, None] * gmm_xyz).sum(0) / max(w.sum(), 1e-12)
        offset = atom_xyz_box.mean(0) - gmm_centre
        raise InputError(
            model.path or None,
            f"atomic model does not overlap the GMM: {100 * fraction:.0f}% of atoms lie within "
            f"{reach_angstrom:.1f} Å of a Gaussian; the model centre is offset by "
            f"({offset[0]:.1f}, {offset[1]:.1f}, {offset[2]:.1f}) Å from the GMM centre "
            f"(is it fitted in the consensus map whose box the GMM uses?)",
        )


def check_model_matches(model: AtomModel, gmm: GMM) -> None:
    """One-line :class:`InputError` when ``model`` is not the model ``gmm`` was built from.

    A GMM built from a model records the model's atom count (``atom_to_gaussian``,
    ``(n_atoms_total,)``) and per-atom residue numbers (``model_residue_number``); a model
    with another atom count or another residue numbering is refused (GMMs built from a
    map alone record neither and accept any model).
    """
    a2g = gmm.extras.get("atom_to_gaussian")
    where = model.path or None
    if a2g is not None and np.asarray(a2g).shape[0] != model.n_atoms_total:
        selection = str(gmm.extras.get("model_selection", "")) or "?"
        raise InputError(where, f"model has {model.n_atoms_total} atoms but the GMM was built from a model of "
                                f"{np.asarray(a2g).shape[0]} atoms (selection {selection}): not the model the GMM "
                                "was built from")
    numbers = gmm.extras.get("model_residue_number")
    if numbers is not None and np.asarray(numbers).shape[0] == model.n_atoms_total:
        expected = np.asarray(numbers)[model.atom_index]
        bad = np.flatnonzero(expected != model.residue_number)
        if bad.size:
            i = int(bad[0])
            raise InputError(where, f"residue numbering differs from the model the GMM was built from (atom "
                                    f"{int(model.atom_index[i]) + 1}: residue {int(model.residue_number[i])}, "
                                    f"expected {int(expected[i])}; {bad.size} atoms differ)")


class ModelMorpher:
    """Carries GMM offsets onto the atoms of a model.

    Args:
        neutral: the neutral GMM (``params (N, 5)``, box centre in world Å).
        model: atoms to morph (world Å), typically ``read_model(path)`` (all atoms).
        s_angstrom: transition width (default :func:`default_s_angstrom`).
        top_k: weights kept per atom.
        mode: ``"local_rigid"`` (default) or ``"linear"`` (the paper's ``Tᵀ·Δ``), see the module docstring.
        min_overlap: fraction of atoms that must lie within ``max(3 s, 3 σ̄)`` of a Gaussian.

    Attributes:
        atom_xyz_box: ``(n_atoms, 3)`` neutral atoms in the box frame, Å.
        index: ``(n_atoms, k)`` Gaussians feeding each atom; ``weight``: ``(n_atoms, k)``, rows sum to 1.
    """

    def __init__(self, neutral: GMM, model: AtomModel, s_angstrom: float | None = None, top_k: int = 32,
                 mode: str = "local_rigid", min_overlap: float = 0.5):
        from ..errors import ConfigError

        if mode not in MORPH_MODES:
            raise ConfigError(f"unknown morph mode {mode!r}; use one of {', '.join(MORPH_MODES)}")
        self.mode = mode

        self.neutral = neutral
        self.model = model
        gmm_xyz = neutral.params[:, XYZ].detach().cpu().double()
        self.atom_xyz_box = np.asarray(model.xyz_angstrom, dtype=np.float64) - neutral.box_centre_world_angstrom
        self.s_angstrom = float(default_s_angstrom(gmm_xyz.numpy()) if s_angstrom is None else s_angstrom)
        sigma = float(neutral.params[:, WIDTH].abs().mean())
        check_model_matches(model, neutral)
        check_overlap(model, neutral, self.atom_xyz_box, max(3 * self.s_angstrom, 3 * sigma), min_overlap)
        N, n_atoms = gmm_xyz.shape[0], self.atom_xyz_box.shape[0]
        k = min(int(top_k), N)
        index = np.empty((n_atoms, k), dtype=np.int64)
        weight = np.empty((n_atoms, k), dtype=np.float64)
        chunk = max(1, int(2e7 // max(N, 1)))
        for a0 in range(0, n_atoms, chunk):
            target = torch.as_tensor(self.atom_xyz_box[a0 : a0 + chunk])
            T = torch.as_tensor(transition_matrix(gmm_xyz, target, self.s_angstrom, normalize=True)).double()
            if T.shape != (N, target.shape[0]):
                raise ValueError(f"transition_matrix returned {tuple(T.shape)}, expected {(N, target.shape[0])}")
            w, i = torch.topk(torch.nan_to_num(T, nan=0.0).T, k, dim=1)  # (c, k)
            total = w.sum(1, keepdim=True)
            if bool((total <= 0).any()):  # underflow far from every Gaussian: follow the nearest one
                d = torch.cdist(target, gmm_xyz)
                near = d.argmin(1)
                bad = (total <= 0).flatten()
                i[bad, 0], w[bad] = near[bad], 0.0
                w[bad, 0] = 1.0
                total = w.sum(1, keepdim=True)
            index[a0 : a0 + chunk] = i.numpy()
            weight[a0 : a0 + chunk] = (w / total).numpy()
        self.index = torch.as_tensor(index)
        self.weight = torch.as_tensor(weight, dtype=torch.float64)
        mu = gmm_xyz[self.index]  # (n_atoms, k, 3)
        self._mu_bar = (self.weight[..., None] * mu).sum(1)  # (n_atoms, 3)
        self._P = mu - self._mu_bar[:, None]  # (n_atoms, k, 3)
        self._trace_c = (self.weight * (self._P**2).sum(-1)).sum(1)  # (n_atoms,)

    @property
    def n_atoms(self) -> int:
        return int(self.index.shape[0])

    def atom_offsets(self, params: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """Decoded GMMs ``(B, N, 5)`` -> atom offsets ``(B, n_atoms, 3)`` Å, float64 (positions only)."""
        p = params.detach().cpu().to(torch.float64)
        if p.ndim == 2:
            p = p[None]
        nu = p[..., XYZ]  # (B, N, 3)
        neutral = self.neutral.params[:, XYZ].detach().cpu().to(torch.float64)
        if self.mode == "linear":
            delta = nu - neutral
            return (delta[:, self.index] * self.weight[None, :, :, None]).sum(2)
        x = torch.as_tensor(self.atom_xyz_box)
        out = torch.empty(p.shape[0], self.n_atoms, 3, dtype=torch.float64)
        eye = torch.eye(3, dtype=torch.float64)
        for a0 in range(0, self.n_atoms, chunk):
            sl = slice(a0, a0 + chunk)
            w, idx, P = self.weight[sl], self.index[sl], self._P[sl]
            q = nu[:, idx]  # (B, c, k, 3)
            nu_bar = (w[None, ..., None] * q).sum(2)  # (B, c, 3)
            Q = q - nu_bar[:, :, None]
            H = torch.einsum("ck,cki,bckj->bcij", w, P, Q)
            H = H + (REG * self._trace_c[sl] + REG_ABS)[None, :, None, None] * eye
            U, _, Vh = torch.linalg.svd(H)
            V, Ut = Vh.transpose(-1, -2), U.transpose(-1, -2)
            d = torch.sign(torch.linalg.det(V @ Ut))
            D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
            R = V @ D @ Ut  # (B, c, 3, 3)
            rel = (x[sl] - self._mu_bar[sl])[None, :, :, None]  # (1, c, 3, 1)
            moved = nu_bar + (R @ rel)[..., 0]
            out[:, sl] = moved - x[sl][None]
        return out

    def morph_params(self, params: torch.Tensor) -> np.ndarray:
        """Decoded GMMs ``(B, N, 5)`` -> morphed atoms in world coordinates ``(B, n_atoms, 3)`` float64."""
        return np.asarray(self.model.xyz_angstrom, dtype=np.float64)[None] + self.atom_offsets(params).numpy()

    def morph(self, decode_fn: DecodeFn, z) -> np.ndarray:
        """Latent points ``z (F, d)`` (or ``(d,)``) -> morphed frames ``(F, n_atoms, 3)`` world Å."""
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
        zt = zt.reshape(-1, zt.shape[-1])
        with torch.no_grad():
            params = decode_fn(zt)
        return self.morph_params(params)


def displacement(frames_xyz: np.ndarray) -> np.ndarray:
    """Per-atom distance (Å) between the first and last frames ``(F, n_atoms, 3)`` -> ``(n_atoms,)``."""
    f = np.asarray(frames_xyz, dtype=np.float64)
    return np.linalg.norm(f[-1] - f[0], axis=-1)


def per_residue_displacement(model: AtomModel, displacement_angstrom: np.ndarray) -> pd.DataFrame:
    """Mean and max per-atom displacement per residue, in model order.

    Columns: chain_id, residue_number, residue_name, n_atoms, mean_displacement_angstrom,
    max_displacement_angstrom.
    """
    df = pd.DataFrame({
        "chain_id": model.chain_id, "residue_number": model.residue_number, "residue_name": model.residue_name,
        "d": np.asarray(displacement_angstrom, dtype=np.float64),
    })
    g = df.groupby(["chain_id", "residue_number"], sort=False)
    out = g.agg(residue_name=("residue_name", "first"), n_atoms=("d", "size"),
                mean_displacement_angstrom=("d", "mean"), max_displacement_angstrom=("d", "max"))
    return out.reset_index()


def morphed_model_paths(path: str | os.PathLike) -> list[Path]:
    """``[path, the other format's path]``: ``.pdb`` and ``.cif`` beside each other."""
    path = Path(path)
    if path.suffix.lower() not in (".pdb", ".cif", ".mmcif"):
        raise InputError(path, "morphed model file must end in .pdb, .cif or .mmcif")
    paths = [path.with_suffix(".pdb"), path.with_suffix(".cif") if path.suffix.lower() == ".pdb" else path]
    return [path] + [p for p in paths if p != path][:1]


def write_morphed_models(path: str | os.PathLike, model: AtomModel, frames_xyz: np.ndarray) -> list[Path]:
    """Write frames ``(F, n_atoms, 3)`` as a multi-model PDB and an mmCIF (gemmi) beside each other.

    ``path`` names one of them (``.pdb`` or ``.cif``); the other gets the other suffix.
    Returns both paths.
    """
    paths = morphed_model_paths(path)
    for p in paths:
        write_models(p, model, frames_xyz)
    return paths
