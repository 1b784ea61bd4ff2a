"""Rigid-motion report: rotation angle and axis of a domain per frame, from decoded positions (Kabsch)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gmmplat.analysis.rigid_report import kabsch, rigid_motion, rigid_motion_from_params, rotation_angle_axis
from gmmplat.errors import ConfigError
from gmmplat.model.gmm import GMM
from gmmplat.physics.geometry import axis_angle_to_matrix


def test_kabsch_recovers_rotation():
    g = np.random.default_rng(0)
    P = g.normal(size=(30, 3)) * 5
    R = axis_angle_to_matrix(torch.tensor([0.2, -0.4, 0.3], dtype=torch.float64)).numpy()
    t = np.array([1.0, 2.0, -3.0])
    R2, t2 = kabsch(P, P @ R.T + t, weights=g.uniform(0.5, 2, 30))
    np.testing.assert_allclose(R2, R, atol=1e-10)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    angle, axis = rotation_angle_axis(R)
    assert angle == pytest.approx(np.degrees(np.linalg.norm([0.2, -0.4, 0.3])))
    np.testing.assert_allclose(axis, np.array([0.2, -0.4, 0.3]) / np.linalg.norm([0.2, -0.4, 0.3]), atol=1e-12)


@pytest.fixture
def neutral():
    g = np.random.default_rng(1)
    xyz = np.concatenate([g.normal(size=(20, 3)) * 4, g.normal(size=(15, 3)) * 3 + [14.0, 0, 0]])
    mask = np.zeros(35, dtype=bool)
    mask[20:] = True
    return GMM.from_arrays(xyz, 1.0, 3.0, 64, 2.0, extras={"mask__arm": mask})


def test_rigid_decoder_angle_and_axis(neutral):
    """The report from decode() of a rigid-body decoder equals the decoder's own rotation vectors."""
    from gmmplat.decoders import DECODERS

    dec = DECODERS.build("rigid", 2, neutral, domains=["arm"])
    lin = torch.nn.Linear(2, 6)
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        lin.weight[0, 0], lin.weight[2, 0] = 1.0, 0.5  # rotation vector ∝ z0 · (1, 0, 0.5)
        lin.weight[3, 1] = 1.0  # translation x ∝ z1
    dec.mlp = lin
    z = torch.stack([torch.linspace(-1, 1, 7), torch.linspace(0, 1, 7)], 1)

    def decode_fn(zz):
        return dec.neutral_params + dec(zz)

    rep = rigid_motion(decode_fn, z.numpy(), neutral.params, neutral.masks()["arm"])
    rotvec = dec.describe_motion(z)["rotation_rad"]
    expected = np.degrees(rotvec[:, 0].detach().numpy() @ (np.array([1, 0, 0.5]) / np.linalg.norm([1, 0, 0.5])))
    # signed about the common axis, which is the axis of the largest rotation (frame 0 or 6)
    np.testing.assert_allclose(np.abs(rep["angle_deg"]), np.abs(expected), atol=1e-3)
    assert np.sign(rep["angle_deg"].iloc[0]) == -np.sign(rep["angle_deg"].iloc[-1])
    axis = rep.loc[6, ["axis_x", "axis_y", "axis_z"]].to_numpy(dtype=float)
    np.testing.assert_allclose(np.abs(axis), np.array([1, 0, 0.5]) / np.linalg.norm([1, 0, 0.5]), atol=1e-4)
    assert rep["rmsd_angstrom"].max() < 1e-3
    assert rep.loc[3, "total_angle_deg"] < 1e-3  # z0 = 0: no rotation


def test_non_rigid_motion_has_residual(neutral):
    params = neutral.params.clone()[None].repeat(2, 1, 1)
    params[1, 20:, 0] += torch.linspace(0, 3, 15)  # stretch, not a rigid motion
    rep = rigid_motion_from_params(neutral.params, params, np.arange(20, 35))
    assert rep.loc[1, "rmsd_angstrom"] > 0.3
    with pytest.raises(ConfigError, match="at least 3"):
        rigid_motion_from_params(neutral.params, params, [0, 1])
