"""Cα backbone regularizer: zero at the neutral model, grows with stretch and kink, ignores rigid motion."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gmmplat.errors import ConfigError
from gmmplat.io import read_map, read_model
from gmmplat.model.gmm import GMM
from gmmplat.neutral import build_from_model
from gmmplat.regularizers import REGULARIZERS, CABackboneRegularizer, backbone_geometry, ca_graph
from gmmplat.synthetic.motions import rotation_matrices
from gmmplat.synthetic.structures import Helix
from test_build_helpers import bundle, write_model, write_model_map


def helix_gmm(n=16) -> GMM:
    ca = Helix((0.0, 0.0, 0.0), (0, 0, 1), n).ca()
    extras = ca_graph(ca, np.arange(n), np.array(["A"] * n))
    return GMM.from_arrays(ca, 6.0, 1.5, 32, 1.5, extras=extras)


def test_ideal_helix_graph_values():
    g = helix_gmm(16)
    assert g.extras["bonds"].shape == (15, 2) and g.extras["angles"].shape == (14, 3)
    np.testing.assert_allclose(g.extras["bond_length_angstrom"], 3.80, atol=1e-4)
    # independent: the Cα virtual angle of an ideal helix from its chord lengths (law of cosines)
    ca = g.params[:, :3].double().numpy()
    d13 = np.linalg.norm(ca[2] - ca[0])
    expect = math.degrees(math.acos((2 * 3.8**2 - d13**2) / (2 * 3.8**2)))
    np.testing.assert_allclose(g.extras["angle_deg"], expect, atol=1e-3)


def test_zero_for_neutral_and_invariant_to_rigid_motion():
    g = helix_gmm()
    reg = REGULARIZERS.build("ca_backbone", g)
    assert reg(g.params).item() == pytest.approx(0.0, abs=1e-9)
    R = torch.tensor(rotation_matrices(np.array([1.0, 2.0, 0.5]), np.array([0.7]))[0], dtype=torch.float32)
    p = g.params.clone()
    p[:, :3] = p[:, :3] @ R.T + torch.tensor([3.0, -4.0, 10.0])
    assert reg(p).item() < 1e-8


def test_grows_when_stretched():
    g = helix_gmm()
    reg = REGULARIZERS.build("ca_backbone", g)
    values = []
    for f in (1.0, 1.05, 1.1, 1.2):
        p = g.params.clone()
        p[:, 2] *= f  # stretch along the helix axis
        values.append(reg(p).item())
    assert values[0] < 1e-9 and all(b > a for a, b in zip(values, values[1:]))
    assert values[1] > 1e-3


def test_grows_when_kinked_with_bonds_kept():
    g = helix_gmm()
    reg = REGULARIZERS.build("ca_backbone", g)
    ca = g.params[:, :3].double().numpy()
    pivot = 8
    values = []
    for deg in (0.0, 10.0, 20.0, 40.0):
        R = rotation_matrices(np.array([1.0, 0.0, 0.0]), np.array([math.radians(deg)]))[0]
        kinked = ca.copy()
        kinked[pivot + 1:] = (ca[pivot + 1:] - ca[pivot]) @ R.T + ca[pivot]  # rotate about the pivot Cα
        p = g.params.clone()
        p[:, :3] = torch.tensor(kinked)
        lengths, _ = backbone_geometry(p, g.extras["bonds"], g.extras["angles"])
        np.testing.assert_allclose(lengths[0].numpy(), 3.8, atol=1e-4)  # a kink keeps every bond
        values.append(reg.penalty(p).item())
    assert values[0] < 1e-9 and all(b > a for a, b in zip(values, values[1:]))


def test_batch_weight_and_gradient():
    g = helix_gmm()
    reg = CABackboneRegularizer(g, weight=2.5, angle_weight=0.5)
    p = g.params.clone()
    p[3, 0] += 0.5
    batch = torch.stack([g.params, p]).requires_grad_(True)
    value = reg(batch)
    assert value.item() == pytest.approx(2.5 * 0.5 * reg.penalty(p).item(), rel=1e-5)  # mean over the batch
    value.backward()
    assert torch.isfinite(batch.grad).all() and batch.grad[1].abs().sum() > 0
    assert batch.grad[0].abs().max() < 1e-6  # the neutral GMM is a minimum


def test_chain_breaks_and_chains_have_no_bond():
    ca = Helix((0.0, 0.0, 0.0), (0, 0, 1), 12).ca()
    ca[6:] += np.array([0.0, 0.0, 2.0])  # gap 5-6 longer than 4.5 Å
    chain = np.array(["A"] * 9 + ["B"] * 3)  # chain change between 8 and 9
    graph = ca_graph(ca, np.arange(12), chain)
    pairs = {tuple(b) for b in graph["bonds"].tolist()}
    assert (5, 6) not in pairs and (8, 9) not in pairs and len(pairs) == 9
    assert all({(a, b), (b, c)}.isdisjoint({(5, 6), (8, 9)}) for a, b, c in graph["angles"].tolist())
    assert len(graph["angles"]) == 4 + 1 + 1  # 0-5: 4 angles, 6-8: 1, 9-11: 1


def test_all_atom_build_graph_is_over_ca_gaussians(tmp_path):
    model = bundle()
    write_model(tmp_path / "m.pdb", model)
    write_model_map(tmp_path / "m.mrc", model)
    mp = read_map(tmp_path / "m.mrc")
    heavy = build_from_model(read_model(tmp_path / "m.pdb", selection="heavy"), mp, 6.0)
    ca = build_from_model(read_model(tmp_path / "m.pdb", selection="ca"), mp, 6.0)
    assert len(heavy.extras["bonds"]) == len(ca.extras["bonds"]) == model.n_residues - 1
    ca_atoms = np.nonzero(model.atom_name == "CA")[0]
    np.testing.assert_array_equal(np.unique(heavy.extras["bonds"]), ca_atoms)  # Gaussian i is atom i
    np.testing.assert_allclose(heavy.extras["bond_length_angstrom"], ca.extras["bond_length_angstrom"], atol=1e-4)
    np.testing.assert_allclose(heavy.extras["angle_deg"], ca.extras["angle_deg"], atol=1e-3)
    assert REGULARIZERS.build("ca_backbone", heavy)(heavy.params).item() < 1e-8


def test_missing_graph_is_a_config_error():
    g = GMM.from_arrays(np.zeros((4, 3)), 1.0, 1.0, 32, 1.5)
    with pytest.raises(ConfigError, match="Cα"):
        REGULARIZERS.build("ca_backbone", g)
