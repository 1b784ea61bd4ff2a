"""Symmetry expansion of a particle table, as RELION's ``relion_particle_symmetry_expand``.

Each particle becomes ``K`` rows, one per operator ``R_k`` of the point group (identity first,
:func:`gmmplat.physics.geometry.symmetry_operators`), with the rotation ``A · R_k`` and everything else
(stack and image, origin, CTF, optics group) unchanged.  RELION's program does the same:
``Euler_apply_transf(L, R, ...)`` forms ``L · A · R`` with ``L`` the identity for point groups,
writing the original row first and then one row per further operator (docs/conventions.md).
The copies of a particle are adjacent: row ``i`` is particle ``i // K``, copy ``i % K``, the
order :class:`gmmplat.io.dataset.ParticleDataset` uses for ``gmmplat train --symmetry``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..physics.geometry import euler_to_matrix, expand_rotations, matrix_to_euler, symmetry_operators

__all__ = ["symmetry_expand_table"]


def symmetry_expand_table(table: pd.DataFrame, symmetry: str) -> pd.DataFrame:
    """Symmetry-expanded copy of a normalized particle table (:data:`gmmplat.io.star.TABLE_COLUMNS`).

    Args:
        table: ``P`` rows with ``rot_deg``, ``tilt_deg``, ``psi_deg`` (RELION Euler angles).
        symmetry: ``"C1"``, ``"Cn"`` or ``"Dn"`` (one-line ConfigError otherwise).

    Returns:
        ``P · K`` rows, copies of a particle adjacent, the angles those of ``A · R_k`` (rounded to
        the 6 decimals a STAR file holds); the index is reset.
    """
    ops = symmetry_operators(symmetry)  # (K, 3, 3)
    K = ops.shape[0]
    A = euler_to_matrix(table["rot_deg"].to_numpy(), table["tilt_deg"].to_numpy(), table["psi_deg"].to_numpy())
    euler = matrix_to_euler(expand_rotations(A, ops)).numpy().reshape(-1, 3)  # (P·K, 3)
    out = table.loc[np.repeat(table.index.to_numpy(), K)].reset_index(drop=True)
    out["rot_deg"], out["tilt_deg"], out["psi_deg"] = (np.round(euler[:, j], 6) for j in range(3))
    return out
