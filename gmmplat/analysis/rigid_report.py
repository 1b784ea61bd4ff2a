"""Rotation angle and axis of a domain per trajectory frame (paper: GLP-1R, the ECD's ~30°).

Works from any ``decode_fn``: the decoded positions of the domain's Gaussians are
superposed on their neutral positions (weighted Kabsch), so the report is the
best rigid motion even for non-rigid decoders, with the fit residual saying how
rigid the motion is.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError
from ..model.gmm import AMPLITUDE, XYZ

DecodeFn = Callable[[torch.Tensor], torch.Tensor]


def kabsch(P: np.ndarray, Q: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rotation ``R (3, 3)`` and translation ``t (3,)`` minimising ``Σ w |R p + t − q|²`` for ``P, Q (n, 3)``."""
    P, Q = np.asarray(P, dtype=np.float64), np.asarray(Q, dtype=np.float64)
    w = np.ones(len(P)) if weights is None else np.abs(np.asarray(weights, dtype=np.float64))
    w = w / w.sum()
    pc, qc = w @ P, w @ Q
    H = ((P - pc) * w[:, None]).T @ (Q - qc)
    U, _, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(Vt.T @ U.T)) or 1.0
    R = Vt.T @ np.diag([1.0, 1.0, d]) @ U.T
    return R, qc - R @ pc


def rotation_angle_axis(R: np.ndarray) -> tuple[float, np.ndarray]:
    """Rotation matrix -> ``(angle in degrees ∈ [0, 180], unit axis (3,))`` (axis = z for the identity)."""
    from scipy.spatial.transform import Rotation

    rotvec = Rotation.from_matrix(np.asarray(R, dtype=np.float64)).as_rotvec()
    angle = float(np.linalg.norm(rotvec))
    axis = rotvec / angle if angle > 1e-12 else np.array([0.0, 0.0, 1.0])
    return float(np.degrees(angle)), axis


def rigid_motion_from_params(neutral_params: torch.Tensor, params: torch.Tensor, domain) -> pd.DataFrame:
    """Best rigid motion of the Gaussians ``domain`` (bool ``(N,)`` or indices) per frame.

    Args:
        neutral_params: ``(N, 5)``; params: decoded ``(F, N, 5)``.

    Returns:
        One row per frame: ``frame``, ``angle_deg`` (signed component about the common axis:
        the axis of the frame with the largest rotation), ``total_angle_deg`` (unsigned, about
        the frame's own axis), ``axis_x/y/z`` (the frame's own unit axis),
        ``translation_x/y/z_angstrom`` (shift of the weighted domain centroid),
        ``rmsd_angstrom`` (residual of the rigid fit).
    """
    neutral = torch.as_tensor(neutral_params).detach().cpu().double().numpy()
    p = torch.as_tensor(params).detach().cpu().double().numpy()
    if p.ndim == 2:
        p = p[None]
    idx = np.asarray(domain)
    if idx.dtype == bool:
        if idx.shape != (neutral.shape[0],):
            raise ConfigError(f"domain mask has shape {idx.shape}, the GMM has {neutral.shape[0]} Gaussians")
        idx = np.nonzero(idx)[0]
    if len(idx) < 3:
        raise ConfigError(f"a domain needs at least 3 Gaussians for a rotation, got {len(idx)}")
    P, w = neutral[idx, XYZ], neutral[idx, AMPLITUDE]
    rows, axes = [], []
    for f in range(p.shape[0]):
        Q = p[f, idx, XYZ]
        R, t = kabsch(P, Q, w)
        angle, axis = rotation_angle_axis(R)
        moved = P @ R.T + t
        wn = np.abs(w) / np.abs(w).sum()
        shift = wn @ Q - wn @ P
        rmsd = float(np.sqrt(wn @ np.sum((moved - Q) ** 2, axis=1)))
        rows.append(dict(frame=f, angle_deg=angle, total_angle_deg=angle, axis_x=axis[0], axis_y=axis[1], axis_z=axis[2],
                         translation_x_angstrom=shift[0], translation_y_angstrom=shift[1],
                         translation_z_angstrom=shift[2], rmsd_angstrom=rmsd))
        axes.append(axis * np.radians(angle))
    table = pd.DataFrame(rows)
    ref = axes[int(np.argmax(table["total_angle_deg"].to_numpy()))]
    norm = np.linalg.norm(ref)
    if norm > 0:
        table["angle_deg"] = [float(np.degrees(a @ ref / norm)) for a in axes]
    return table


def rigid_motion(decode_fn: DecodeFn, z, neutral_params: torch.Tensor, domain) -> pd.DataFrame:
    """:func:`rigid_motion_from_params` of the GMMs decoded at latent points ``z (F, d)``."""
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32))
    with torch.no_grad():
        params = decode_fn(zt.reshape(-1, zt.shape[-1]))
    return rigid_motion_from_params(neutral_params, params, domain)
