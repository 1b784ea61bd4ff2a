"""Symmetry expansion of a particle table: RELION's A · R_k, pinned by projections of a C4-symmetric object."""
import numpy as np
import pandas as pd
import pytest

from gmmplat.errors import ConfigError
from gmmplat.io import symmetry_expand_table
from gmmplat.physics.geometry import euler_to_matrix, symmetry_operators
from gmmplat.synthetic.images import project_atoms

BOX, APIX, SIGMA = 48, 2.0, 2.5


def _table(n=3, seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame({
        "stack_path": ["s.mrcs"] * n, "image_index": np.arange(n),
        "rot_deg": r.uniform(-180, 180, n), "tilt_deg": r.uniform(10, 170, n), "psi_deg": r.uniform(-180, 180, n),
        "shift_x_angstrom": r.uniform(-3, 3, n), "shift_y_angstrom": r.uniform(-3, 3, n),
        "defocus_u_angstrom": r.uniform(1e4, 2e4, n),
    })


def _c4_object(seed=1):
    """Atoms ``(4·n, 3)`` of an asymmetric unit repeated under the 4-fold about z: exactly C4-symmetric."""
    unit = np.random.default_rng(seed).uniform(-25, 25, (12, 3)) + np.array([10.0, 0.0, 0.0])
    return np.concatenate([unit @ R.T for R in symmetry_operators("C4").numpy()])


def _project(xyz, A, shifts):
    return project_atoms(xyz, np.ones(len(xyz)), A, shifts, BOX, APIX, SIGMA)


def test_rows_and_angles_are_relion_expansion():
    table = _table()
    out = symmetry_expand_table(table, "c4")
    assert len(out) == 4 * len(table)
    assert (out["image_index"].to_numpy() == np.repeat(table["image_index"], 4)).all()  # copies adjacent
    for col in ("shift_x_angstrom", "shift_y_angstrom", "defocus_u_angstrom", "stack_path"):
        assert (out[col].to_numpy() == np.repeat(table[col].to_numpy(), 4)).all()  # origin and CTF kept
    A = euler_to_matrix(table["rot_deg"], table["tilt_deg"], table["psi_deg"]).numpy()
    B = euler_to_matrix(out["rot_deg"], out["tilt_deg"], out["psi_deg"]).numpy().reshape(-1, 4, 3, 3)
    R = symmetry_operators("C4").numpy()
    assert np.allclose(B, A[:, None] @ R[None], atol=1e-6)  # A · R_k, identity first
    assert not np.allclose(B[:, 1:], (R[None, 1:] @ A[:, None]), atol=1e-3)  # not R_k · A


def test_expanded_projection_of_a_symmetric_object_equals_the_original():
    table = _table()
    out = symmetry_expand_table(table, "C4")
    xyz = _c4_object()
    shifts = table[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy()
    A = euler_to_matrix(table["rot_deg"], table["tilt_deg"], table["psi_deg"]).numpy()
    original = _project(xyz, A, shifts)
    B = euler_to_matrix(out["rot_deg"], out["tilt_deg"], out["psi_deg"]).numpy()
    expanded = _project(xyz, B, np.repeat(shifts, 4, axis=0)).reshape(len(table), 4, BOX, BOX)
    scale = np.abs(original).max()
    assert np.abs(expanded - original[:, None]).max() < 1e-4 * scale
    # the other order (R_k · A) sees the object from another direction
    R = symmetry_operators("C4").numpy()
    wrong = _project(xyz, (R[1][None] @ A), shifts)
    assert np.abs(wrong - original).max() > 0.1 * scale


def test_bad_symmetry_is_one_line_config_error():
    with pytest.raises(ConfigError, match="not understood"):
        symmetry_expand_table(_table(), "X4")
