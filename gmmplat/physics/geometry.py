"""Rotations in RELION's convention, random rotations and point-group operators.

``A = euler_to_matrix(rot, tilt, psi)`` is RELION's ``Euler_angles2matrix``;
a point ``r`` of the map (Å from the box centre, x/y/z) projects to image
position ``(A @ r)[:2]`` (see docs/conventions.md).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import ConfigError


def euler_to_matrix(rot_deg, tilt_deg, psi_deg) -> torch.Tensor:
    """RELION Euler angles (degrees, any broadcastable shape ``S``) -> matrices ``S + (3, 3)``.

    ``A = Rz(psi) Ry(tilt) Rz(rot)`` with passive rotations (RELION ``Euler_angles2matrix``).
    """
    rot, tilt, psi = (torch.as_tensor(v, dtype=torch.float64) for v in (rot_deg, tilt_deg, psi_deg))
    rot, tilt, psi = torch.broadcast_tensors(torch.deg2rad(rot), torch.deg2rad(tilt), torch.deg2rad(psi))
    ca, sa = torch.cos(rot), torch.sin(rot)
    cb, sb = torch.cos(tilt), torch.sin(tilt)
    cg, sg = torch.cos(psi), torch.sin(psi)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    rows = [
        [cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
        [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
        [sc, ss, cb],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def matrix_to_euler(A) -> torch.Tensor:
    """Rotation matrices ``(..., 3, 3)`` -> RELION Euler angles ``(..., 3)`` (rot, tilt, psi) in degrees.

    Transcribes RELION's ``Euler_matrix2angles`` (tilt in [0, 180]).
    """
    A = torch.as_tensor(A, dtype=torch.float64)
    eps = 16 * np.finfo(np.float32).eps
    abs_sb = torch.sqrt(A[..., 0, 2] ** 2 + A[..., 1, 2] ** 2)
    regular = abs_sb > eps
    gamma = torch.atan2(A[..., 1, 2], -A[..., 0, 2])
    alpha = torch.atan2(A[..., 2, 1], A[..., 2, 0])
    sin_g = torch.sin(gamma)
    sign_sb = torch.where(
        sin_g.abs() < np.finfo(np.float32).eps,
        torch.sign(-A[..., 0, 2] / torch.cos(gamma)),
        torch.where(sin_g > 0, torch.sign(A[..., 1, 2]), -torch.sign(A[..., 1, 2])),
    )
    beta = torch.atan2(sign_sb * abs_sb, A[..., 2, 2])
    # degenerate tilt = 0 or 180: all rotation about z goes into psi
    up = A[..., 2, 2] > 0
    gamma_deg = torch.where(up, torch.atan2(-A[..., 1, 0], A[..., 0, 0]), torch.atan2(A[..., 1, 0], -A[..., 0, 0]))
    alpha = torch.where(regular, alpha, torch.zeros_like(alpha))
    beta = torch.where(regular, beta, torch.where(up, torch.zeros_like(beta), torch.full_like(beta, math.pi)))
    gamma = torch.where(regular, gamma, gamma_deg)
    return torch.rad2deg(torch.stack([alpha, beta, gamma], dim=-1))


def random_rotations(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` rotations uniform on SO(3) (Haar), from normalised Gaussian quaternions. ``(n, 3, 3)`` float64."""
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=1, keepdim=True)
    return quaternion_to_matrix(q)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions ``(..., 4)`` as (w, x, y, z) -> active rotation matrices ``(..., 3, 3)``."""
    w, x, y, z = q.unbind(-1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rotation vectors ``(..., 3)`` (axis × angle in radians) -> active matrices ``(..., 3, 3)``.

    Differentiable everywhere (uses the series form near zero angle).
    """
    theta2 = (rotvec * rotvec).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    theta = torch.sqrt(theta2.clamp_min(1e-12))
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    x, y, z = rotvec.unbind(-1)
    zero = torch.zeros_like(x)
    K = torch.stack(
        [torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1), torch.stack([-y, x, zero], -1)], -2
    )
    eye = torch.eye(3, dtype=rotvec.dtype, device=rotvec.device).expand_as(K)
    return eye + a * K + b * (K @ K)


def _rz(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def symmetry_operators(symmetry: str) -> torch.Tensor:
    """Operators of point group ``"C1"``, ``"Cn"`` or ``"Dn"`` -> ``(K, 3, 3)`` float64.

    The n-fold axis is z (RELION); Dn adds the 2-fold about x.  The identity is first.
    """
    sym = symmetry.strip().upper()
    if len(sym) < 2 or sym[0] not in "CD" or not sym[1:].isdigit() or int(sym[1:]) < 1:
        raise ConfigError(f"symmetry {symmetry!r} not understood; use C1, Cn or Dn")
    n = int(sym[1:])
    ops = [_rz(2 * math.pi * k / n) for k in range(n)]
    if sym[0] == "D":
        flip = np.diag([1.0, -1.0, -1.0])  # 180 degrees about x
        ops += [op @ flip for op in ops[:n]]
    return torch.tensor(np.stack(ops))


def expand_rotations(A: torch.Tensor, operators: torch.Tensor) -> torch.Tensor:
    """Symmetry expansion: ``A (B, 3, 3)``, ``R (K, 3, 3)`` -> ``A @ R_k``, shape ``(B, K, 3, 3)``."""
    return A[:, None] @ operators.to(A.dtype)[None]
