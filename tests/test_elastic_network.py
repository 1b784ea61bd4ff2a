"""Elastic-network regularizer: pairs within the cutoff, zero for rigid motion, and it sees the
helix slide that the Cα backbone regularizer cannot."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gmmplat.errors import ConfigError
from gmmplat.model.gmm import GMM
from gmmplat.model.masks import add_mask
from gmmplat.regularizers import REGULARIZERS, ElasticNetworkRegularizer, ca_graph, network_pairs
from gmmplat.synthetic.motions import rotation_matrices
from gmmplat.synthetic.structures import Helix

N_RES = 14
SEPARATION_ANGSTROM = 9.0  # two helices of a bundle


def two_helices(shift_first: int = 0) -> np.ndarray:
    """``(2 * N_RES, 3)`` Cα of two parallel ideal helices, chains A then B; ``shift_first`` moves
    helix A along its own screw by that many residues (every Cα onto the next one's place)."""
    a = Helix((0.0, 0.0, 0.0), (0, 0, 1), N_RES + 2).ca()[1 + shift_first:1 + shift_first + N_RES]
    b = Helix((SEPARATION_ANGSTROM, 0.0, 0.0), (0, 0, 1), N_RES).ca()
    return np.concatenate([a, b])


def bundle_gmm() -> GMM:
    ca = two_helices()
    extras = ca_graph(ca, np.arange(len(ca)), np.array(["A"] * N_RES + ["B"] * N_RES))
    return GMM.from_arrays(ca, 6.0, 1.5, 32, 1.5, extras=extras)


def with_xyz(gmm: GMM, xyz: np.ndarray) -> torch.Tensor:
    p = gmm.params.clone()
    p[:, :3] = torch.as_tensor(xyz, dtype=p.dtype)
    return p


def test_pairs_are_exactly_those_within_the_cutoff():
    xyz = np.array([[0.0, 0, 0], [5.0, 0, 0], [9.9, 0, 0], [20.0, 0, 0]])
    assert network_pairs(xyz, 10.0).tolist() == [[0, 1], [0, 2], [1, 2]]
    assert network_pairs(xyz, 5.5).tolist() == [[0, 1], [1, 2]]
    assert network_pairs(xyz, 5.5, index=np.array([0, 2, 3])).tolist() == []
    assert network_pairs(xyz, 30.0, index=np.array([3, 0])).tolist() == [[3, 0]]


def test_pairs_match_a_brute_force_count_and_stay_bounded_when_dense():
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 40, size=(300, 3))
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    brute = np.stack(np.nonzero(np.triu(d < 10.0, k=1)), axis=1)
    np.testing.assert_array_equal(network_pairs(xyz, 10.0, max_neighbours=None), brute)
    np.testing.assert_array_equal(network_pairs(xyz, 10.0, max_neighbours=299), brute)
    # each Gaussian keeps at least its 4 nearest within the cutoff; no more than N · 4 pairs
    few = network_pairs(xyz, 10.0, max_neighbours=4)
    assert len(few) <= 300 * 4 and {tuple(p) for p in few.tolist()} <= {tuple(p) for p in brute.tolist()}
    nearest = np.argsort(d, axis=1)[:, 1:5]
    want = {(min(i, j), max(i, j)) for i in range(300) for j in nearest[i] if d[i, j] < 10.0}
    assert want == {tuple(p) for p in few.tolist()}
    dense = rng.uniform(0, 30, size=(4000, 3))  # an all-atom density: hundreds within 10 Å of each
    assert len(network_pairs(dense, 10.0)) <= 4000 * 32


def test_penalty_by_hand():
    g = GMM.from_arrays(np.array([[0.0, 0, 0], [4.0, 0, 0], [0.0, 3.0, 0], [50.0, 0, 0]]), 1.0, 1.0, 32, 1.5)
    reg = ElasticNetworkRegularizer(g, reference="neutral", weight=2.0, cutoff_angstrom=6.0)
    assert reg.n_pairs == 3  # 0-1 (4 Å), 0-2 (3 Å), 1-2 (5 Å); the far Gaussian has none
    moved = np.array([[0.0, 0, 0], [5.0, 0, 0], [0.0, 3.0, 0], [70.0, 0, 0]])
    # 0-1: 4 -> 5, 0-2: 3 -> 3, 1-2: 5 -> sqrt(34); the far Gaussian's move costs nothing
    expect = ((5 - 4) ** 2 + 0 + (np.sqrt(34) - 5) ** 2) / 3
    assert reg.penalty(with_xyz(g, moved)).item() == pytest.approx(expect, rel=1e-5)
    assert reg(with_xyz(g, moved)).item() == pytest.approx(2.0 * expect, rel=1e-5)


def test_zero_for_neutral_and_rigid_motion():
    g = bundle_gmm()
    reg = REGULARIZERS.build("elastic_network", g, reference="neutral")
    assert reg(g.params).item() == pytest.approx(0.0, abs=1e-9)
    R = rotation_matrices(np.array([0.3, -1.0, 2.0]), np.array([1.1]))[0]
    moved = g.params[:, :3].double().numpy() @ R.T + np.array([-7.0, 2.0, 30.0])
    assert reg(with_xyz(g, moved)).item() < 1e-8


def test_sees_a_helix_sliding_along_its_screw_that_bonds_and_angles_do_not():
    g = bundle_gmm()
    slid = with_xyz(g, two_helices(shift_first=1))  # helix A turned 100° and moved 1.5 Å along its axis
    assert float((slid[:N_RES, :3] - g.params[:N_RES, :3]).norm(dim=1).min()) > 3.0  # every Cα moved
    backbone = REGULARIZERS.build("ca_backbone", g)
    assert backbone.penalty(slid).item() < 1e-8  # same bonds, same angles
    elastic = REGULARIZERS.build("elastic_network", g, reference="neutral")
    assert elastic.penalty(slid).item() > 0.1  # Å²: the distances to helix B changed


def test_subset_by_mask_names():
    g = bundle_gmm()
    add_mask(g, "first", np.arange(2 * N_RES) < N_RES)
    whole = REGULARIZERS.build("elastic_network", g, reference="neutral")
    core = REGULARIZERS.build("elastic_network", g, reference="neutral", subset="!first")
    only = REGULARIZERS.build("elastic_network", g, reference="neutral", subset="first")
    assert set(core.pairs.flatten().tolist()) <= set(range(N_RES, 2 * N_RES))
    assert set(only.pairs.flatten().tolist()) <= set(range(N_RES))
    assert core.n_pairs + only.n_pairs < whole.n_pairs  # the pairs across the two helices are in neither
    moved = g.params[:, :3].double().numpy().copy()
    moved[:N_RES] += np.array([0.0, 0.0, 4.0])  # helix A shifted as a rigid body
    p = with_xyz(g, moved)
    assert core(p).item() < 1e-10 and only(p).item() < 1e-10 and whole(p).item() > 0.1


def test_bad_options_are_config_errors():
    g = bundle_gmm()
    with pytest.raises(ConfigError, match="no mask 'nope'"):
        REGULARIZERS.build("elastic_network", g, subset="nope")
    with pytest.raises(ConfigError, match="positive"):
        REGULARIZERS.build("elastic_network", g, cutoff_angstrom=0.0)
    with pytest.raises(ConfigError, match="max_neighbours must be at least 1"):
        REGULARIZERS.build("elastic_network", g, max_neighbours=0)
    with pytest.raises(ConfigError, match="tolerance_angstrom must be 0 or more"):
        REGULARIZERS.build("elastic_network", g, tolerance_angstrom=-0.5)
    with pytest.raises(ConfigError, match="no two Gaussians closer than 1 Å"):
        REGULARIZERS.build("elastic_network", g, cutoff_angstrom=1.0)
    with pytest.raises(TypeError, match="unknown options: radius"):
        REGULARIZERS.build("elastic_network", g, radius=3.0)


def test_distance_change_is_signed_per_pair():
    g = GMM.from_arrays(np.array([[0.0, 0, 0], [4.0, 0, 0], [0.0, 3.0, 0]]), 1.0, 1.0, 32, 1.5)
    reg = ElasticNetworkRegularizer(g, reference="neutral", cutoff_angstrom=6.0)
    change = reg.distance_change(with_xyz(g, np.array([[0.0, 0, 0], [5.0, 0, 0], [0.0, 2.0, 0]])))
    assert change.shape == (1, 3) and reg.pairs.tolist() == [[0, 1], [0, 2], [1, 2]]
    np.testing.assert_allclose(change[0].numpy(), [1.0, -1.0, np.sqrt(29) - 5], atol=1e-5)


def test_tolerance_is_a_flat_bottom():
    g = GMM.from_arrays(np.array([[0.0, 0, 0], [4.0, 0, 0], [0.0, 3.0, 0]]), 1.0, 1.0, 32, 1.5)
    reg = ElasticNetworkRegularizer(g, reference="neutral", cutoff_angstrom=6.0, tolerance_angstrom=0.5)
    # changes +1, -1, sqrt(29) - 5 (0.385 Å, inside the tolerance)
    moved = with_xyz(g, np.array([[0.0, 0, 0], [5.0, 0, 0], [0.0, 2.0, 0]]))
    assert reg.penalty(moved).item() == pytest.approx((0.5 ** 2 + 0.5 ** 2 + 0.0) / 3, rel=1e-5)
    small = with_xyz(g, np.array([[0.0, 0, 0], [4.4, 0, 0], [0.0, 3.3, 0]]))  # every change under 0.5 Å
    assert reg.penalty(small).item() == 0.0
    # the helix slide still costs: its distance changes are far larger than 1 Å
    bundle = bundle_gmm()
    flat = REGULARIZERS.build("elastic_network", bundle, reference="neutral", tolerance_angstrom=1.0)
    assert flat.penalty(with_xyz(bundle, two_helices(shift_first=1))).item() > 0.05


def test_batch_reference_measures_changes_from_the_batch_mean():
    g = GMM.from_arrays(np.array([[0.0, 0, 0], [4.0, 0, 0], [0.0, 3.0, 0]]), 1.0, 1.0, 32, 1.5)
    neutral = ElasticNetworkRegularizer(g, reference="neutral", cutoff_angstrom=6.0)
    batch = ElasticNetworkRegularizer(g, cutoff_angstrom=6.0, reference="batch")
    # pairs 0-1, 0-2, 1-2 at 4, 3, 5 Å; particle a stretches 0-1 to 6 Å, particle b to 8 Å
    a = with_xyz(g, np.array([[0.0, 0, 0], [6.0, 0, 0], [0.0, 3.0, 0]]))
    b = with_xyz(g, np.array([[0.0, 0, 0], [8.0, 0, 0], [0.0, 3.0, 0]]))
    d12 = lambda x: np.hypot(x, 3.0)  # noqa: E731  the 1-2 distance with Gaussian 1 at (x, 0, 0)
    mean01, mean12 = 7.0, (d12(6.0) + d12(8.0)) / 2
    expect = ((6 - mean01) ** 2 + (8 - mean01) ** 2 + (d12(6.0) - mean12) ** 2 + (d12(8.0) - mean12) ** 2) / 6
    assert batch.penalty(torch.stack([a, b])).item() == pytest.approx(expect, rel=1e-5)
    # the same distortion in every particle costs nothing from the batch mean, but does from the neutral GMM
    same = torch.stack([a, a, a])
    assert batch.penalty(same).item() == pytest.approx(0.0, abs=1e-9)
    assert neutral.penalty(same).item() == pytest.approx(neutral.penalty(a).item(), rel=1e-6)
    assert neutral.penalty(a).item() == pytest.approx((2 ** 2 + (d12(6.0) - 5) ** 2) / 3, rel=1e-5)
    assert batch.penalty(a).item() == 0.0  # one GMM is its own mean
    assert "reference=batch" in repr(batch)
    with pytest.raises(ConfigError, match="reference must be 'neutral' or 'batch', got 'mean'"):
        ElasticNetworkRegularizer(g, reference="mean")


def test_batch_reference_with_a_tolerance_still_sees_the_slide_of_one_particle():
    g = bundle_gmm()
    reg = REGULARIZERS.build("elastic_network", g, tolerance_angstrom=1.0, reference="batch")
    slid = with_xyz(g, two_helices(shift_first=1))
    assert reg.penalty(torch.stack([g.params, g.params])).item() == pytest.approx(0.0, abs=1e-9)
    # each particle is half the slide's change away from the mean: the penalty of the changes
    # beyond the tolerance, halved, is what the batch reference charges
    half = reg.distance_change(torch.stack([g.params, slid])).diff(dim=0).abs() / 2
    expect = (torch.relu(half - 1.0) ** 2).mean().item()
    assert reg.penalty(torch.stack([g.params, slid])).item() == pytest.approx(expect, rel=1e-5)
    assert expect > 0.03  # Å²: the slide still shows
    # a rigid motion of one particle changes no distance
    R = rotation_matrices(np.array([0.3, -1.0, 2.0]), np.array([1.1]))[0]
    moved = with_xyz(g, g.params[:, :3].double().numpy() @ R.T + np.array([-7.0, 2.0, 30.0]))
    assert reg.penalty(torch.stack([g.params, moved])).item() < 1e-8
