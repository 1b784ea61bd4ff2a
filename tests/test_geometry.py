import math

import numpy as np
import pytest
import torch

from gmmplat.errors import ConfigError
from gmmplat.physics.geometry import (
    axis_angle_to_matrix, euler_to_matrix, expand_rotations, matrix_to_euler, random_rotations,
    symmetry_operators,
)


def test_euler_matches_relion_formula_by_hand():
    # rot = 90: A = Rz(90) passive maps x -> -y in the image: a point on +x lands at (0, -10)
    A = euler_to_matrix(90.0, 0.0, 0.0)
    assert torch.allclose(A @ torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64),
                          torch.tensor([0.0, -10.0, 0.0], dtype=torch.float64), atol=1e-12)
    # tilt = 90 about y: z goes to +x (A[0,2] = -cos(psi) sin(tilt) ... = -1 for psi=0) -> (-1,0,0)
    A = euler_to_matrix(0.0, 90.0, 0.0)
    assert torch.allclose(A @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64),
                          torch.tensor([-1.0, 0.0, 0.0], dtype=torch.float64), atol=1e-12)


def test_euler_roundtrip():
    g = torch.Generator().manual_seed(0)
    R = random_rotations(500, g)
    eul = matrix_to_euler(R)
    assert (eul[:, 1] >= 0).all() and (eul[:, 1] <= 180).all()
    assert torch.allclose(euler_to_matrix(eul[:, 0], eul[:, 1], eul[:, 2]), R, atol=1e-9)


@pytest.mark.parametrize("angles", [(10.0, 0.0, 30.0), (0.0, 180.0, 45.0), (-30.0, 1e-9, 5.0)])
def test_euler_roundtrip_degenerate_tilts(angles):
    A = euler_to_matrix(*angles)
    back = matrix_to_euler(A)
    assert torch.allclose(euler_to_matrix(*back), A, atol=1e-7)


def test_random_rotations_are_rotations_and_uniform():
    R = random_rotations(20000, torch.Generator().manual_seed(1))
    eye = torch.eye(3, dtype=R.dtype)
    assert torch.allclose(R @ R.transpose(1, 2), eye.expand_as(R), atol=1e-10)
    assert torch.allclose(torch.det(R), torch.ones(len(R), dtype=R.dtype))
    # Haar measure: the rotated z axis is uniform on the sphere, E[z_z] = 0, E[z_z^2] = 1/3
    zz = R[:, 2, 2]
    assert abs(zz.mean()) < 0.02 and abs((zz**2).mean() - 1 / 3) < 0.02


def test_axis_angle():
    v = torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64)
    R = axis_angle_to_matrix(v)
    assert torch.allclose(R @ torch.tensor([1.0, 0, 0], dtype=torch.float64),
                          torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(axis_angle_to_matrix(torch.zeros(3, dtype=torch.float64)), torch.eye(3, dtype=torch.float64))
    v = torch.zeros(3, requires_grad=True)
    axis_angle_to_matrix(v).sum().backward()
    assert torch.isfinite(v.grad).all()


@pytest.mark.parametrize("sym,order", [("C1", 1), ("C4", 4), ("D2", 4), ("d7", 14)])
def test_symmetry_group_closed(sym, order):
    ops = symmetry_operators(sym)
    assert ops.shape == (order, 3, 3)
    assert torch.allclose(ops[0], torch.eye(3, dtype=ops.dtype))
    flat = ops.reshape(order, 9)
    for a in ops:
        for b in ops:
            assert (torch.cdist((a @ b).reshape(1, 9), flat) < 1e-9).any()


def test_symmetry_expansion_order():
    A = random_rotations(3, torch.Generator().manual_seed(2))
    ops = symmetry_operators("C3")
    E = expand_rotations(A, ops)
    assert E.shape == (3, 3, 3, 3)
    assert torch.allclose(E[1, 2], A[1] @ ops[2])


def test_bad_symmetry():
    with pytest.raises(ConfigError):
        symmetry_operators("O")
