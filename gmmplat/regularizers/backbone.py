"""Cα backbone regularizer: bond lengths and angles of the Cα trace kept near the neutral model.

Graph (stored as GMM extras, built by :func:`ca_graph`):

* ``bonds (E, 2)`` int64: Gaussian indices of consecutive Cα atoms of one chain
  (file order); a pair whose neutral distance exceeds ``max_bond_angstrom``
  (4.5 Å; consecutive Cα are 3.8 Å apart) is a chain break and gets no bond.
* ``bond_length_angstrom (E,)`` float32: neutral lengths.
* ``angles (A, 3)`` int64: Gaussian indices ``(i, j, k)`` of two bonds sharing ``j``.
* ``angle_deg (A,)`` float32: neutral angle at ``j``.

Penalty of a GMM ``(B, N, 5)`` (Å² + rad², averaged over the batch):
``mean_e (|x_i - x_j| - L_e)² + angle_weight · mean_a (θ_a - Θ_a)²``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError
from ..model.gmm import GMM, XYZ
from .base import REGULARIZERS, Regularizer

GRAPH_KEYS = ("bonds", "bond_length_angstrom", "angles", "angle_deg")
MAX_BOND_ANGSTROM = 4.5


def ca_graph(xyz_angstrom: np.ndarray, gaussian_index: np.ndarray, chain_id: np.ndarray,
             max_bond_angstrom: float = MAX_BOND_ANGSTROM) -> dict[str, np.ndarray]:
    """Bond/angle graph of a Cα trace.

    Args:
        xyz_angstrom: ``(K, 3)`` Cα positions in chain order (any frame, Å).
        gaussian_index: ``(K,)`` the Gaussian that each Cα is.
        chain_id: ``(K,)`` chain names; bonds never cross chains.
        max_bond_angstrom: longer consecutive pairs are chain breaks.

    Returns:
        The extras of the module docstring (empty arrays when there are no bonds).
    """
    xyz = np.asarray(xyz_angstrom, dtype=np.float64).reshape(-1, 3)
    g = np.asarray(gaussian_index, dtype=np.int64)
    chain = np.asarray(chain_id)
    if len(xyz) >= 2:
        d = np.linalg.norm(xyz[1:] - xyz[:-1], axis=1)
        linked = (chain[1:] == chain[:-1]) & (d <= max_bond_angstrom)
    else:
        d, linked = np.zeros(0), np.zeros(0, dtype=bool)
    first = np.nonzero(linked)[0]  # bond between positions p and p+1
    bonds = np.stack([g[first], g[first + 1]], axis=1) if len(first) else np.zeros((0, 2), np.int64)
    pos_angles = first[np.isin(first + 1, first)]  # p, p+1, p+2 all linked
    angles = (np.stack([g[pos_angles], g[pos_angles + 1], g[pos_angles + 2]], axis=1)
              if len(pos_angles) else np.zeros((0, 3), np.int64))
    lengths, theta = backbone_geometry(torch.as_tensor(_params_from_xyz(xyz, g)), bonds, angles)
    return {
        "bonds": bonds.astype(np.int64),
        "bond_length_angstrom": lengths[0].numpy().astype(np.float32),
        "angles": angles.astype(np.int64),
        "angle_deg": np.degrees(theta[0].numpy()).astype(np.float32),
    }


def _params_from_xyz(xyz: np.ndarray, g: np.ndarray) -> np.ndarray:
    """A ``(max(g)+1, 5)`` float64 parameter array with ``xyz`` at rows ``g``."""
    p = np.zeros((int(g.max()) + 1 if len(g) else 0, 5))
    p[g, XYZ] = xyz
    return p


def ca_graph_from_model(gmm: GMM, model, max_bond_angstrom: float = MAX_BOND_ANGSTROM) -> dict[str, np.ndarray]:
    """Graph over the Gaussians of ``gmm`` that are single Cα atoms of ``model``.

    Needs the extra ``atom_to_gaussian`` (over the model file's full atom
    list, -1 for atoms not built). A Gaussian counts as a Cα atom when exactly
    one atom maps to it and that atom is a Cα (all-atom and Cα builds; k-means
    builds give no graph). Neutral geometry is measured on the GMM centres.

    Args:
        gmm: the built GMM.
        model: a :class:`gmmplat.io.models.AtomModel` of the same file (any
            selection that contains the Cα atoms).
    """
    a2g = np.asarray(gmm.extras["atom_to_gaussian"], dtype=np.int64)
    counts = np.bincount(a2g[a2g >= 0], minlength=gmm.n)
    is_ca = (model.atom_name == "CA") & (np.char.upper(model.element) == "C")
    idx = model.atom_index[is_ca]
    g = a2g[idx]
    keep = g >= 0
    keep[keep] &= counts[g[keep]] == 1
    order = np.argsort(idx[keep], kind="stable")
    g = g[keep][order]
    xyz = gmm.params[:, XYZ].detach().double().numpy()[g]
    return ca_graph(xyz, g, model.chain_id[is_ca][keep][order], max_bond_angstrom)


def backbone_geometry(params: torch.Tensor, bonds, angles) -> tuple[torch.Tensor, torch.Tensor]:
    """Bond lengths ``(B, E)`` [Å] and angles ``(B, A)`` [rad] of GMMs ``(B, N, 5)`` or ``(N, 5)``.

    The angle at ``j`` between ``i - j`` and ``k - j`` uses ``atan2(|u×v|, u·v)``
    (finite gradients at 0 and π).
    """
    p = params[None] if params.ndim == 2 else params
    x = p[..., XYZ]
    b = torch.as_tensor(np.asarray(bonds) if not torch.is_tensor(bonds) else bonds, dtype=torch.long, device=x.device)
    a = torch.as_tensor(np.asarray(angles) if not torch.is_tensor(angles) else angles, dtype=torch.long, device=x.device)
    lengths = torch.linalg.vector_norm(x[:, b[:, 0]] - x[:, b[:, 1]], dim=-1) if len(b) else x.new_zeros(x.shape[0], 0)
    if len(a):
        u = x[:, a[:, 0]] - x[:, a[:, 1]]
        v = x[:, a[:, 2]] - x[:, a[:, 1]]
        theta = torch.atan2(torch.linalg.vector_norm(torch.cross(u, v, dim=-1), dim=-1), (u * v).sum(-1))
    else:
        theta = x.new_zeros(x.shape[0], 0)
    return lengths, theta


@REGULARIZERS.register("ca_backbone")
class CABackboneRegularizer(Regularizer):
    """Mean squared deviation of Cα bond lengths (Å²) plus ``angle_weight`` × that of angles (rad²).

    Options: ``angle_weight`` (default 1.0). The neutral GMM must carry the
    graph extras (``bonds``, ``bond_length_angstrom``, ``angles``, ``angle_deg``).
    """

    def __init__(self, neutral: GMM, weight: float = 1.0, angle_weight: float = 1.0, **opts):
        super().__init__(neutral, weight, **opts)
        missing = [k for k in GRAPH_KEYS if k not in neutral.extras]
        if missing:
            raise ConfigError(
                "the ca_backbone regularizer needs a neutral GMM built from an atomic model with Cα atoms "
                f"(missing extras: {', '.join(missing)})"
            )
        self.angle_weight = float(angle_weight)
        ex = neutral.extras
        self.register_buffer("bonds", torch.as_tensor(np.asarray(ex["bonds"], dtype=np.int64).reshape(-1, 2)))
        self.register_buffer("angles", torch.as_tensor(np.asarray(ex["angles"], dtype=np.int64).reshape(-1, 3)))
        self.register_buffer("length0", torch.as_tensor(np.asarray(ex["bond_length_angstrom"], dtype=np.float32)))
        self.register_buffer("theta0", torch.as_tensor(np.radians(np.asarray(ex["angle_deg"], dtype=np.float64))
                                                       .astype(np.float32)))
        if len(self.bonds) and int(self.bonds.max()) >= neutral.n or len(self.angles) and int(self.angles.max()) >= neutral.n:
            raise ConfigError(f"Cα graph refers to Gaussians beyond the neutral GMM's {neutral.n}")

    @property
    def n_bonds(self) -> int:
        return int(self.bonds.shape[0])

    def penalty(self, params: torch.Tensor) -> torch.Tensor:
        p = self.as_batch(params)
        lengths, theta = backbone_geometry(p, self.bonds, self.angles)
        total = p.new_zeros(()) + 0.0 * p[..., XYZ].sum()  # keeps the graph when there are no bonds
        if lengths.shape[-1]:
            total = total + ((lengths - self.length0) ** 2).mean()
        if theta.shape[-1]:
            total = total + self.angle_weight * ((theta - self.theta0) ** 2).mean()
        return total

    def extra_repr(self) -> str:
        return f"bonds={self.n_bonds}, angles={int(self.angles.shape[0])}, weight={self.weight:g}, angle_weight={self.angle_weight:g}"


__all__ = ["CABackboneRegularizer", "ca_graph", "ca_graph_from_model", "backbone_geometry", "GRAPH_KEYS",
           "MAX_BOND_ANGSTROM"]
