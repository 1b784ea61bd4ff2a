"""Small GMM and transition matrix: rigid translations carry over, the paper's kernel, extras."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from factories import random_gmm
from gmmplat.errors import ConfigError
from gmmplat.model.gmm import GMM, render_map
from gmmplat.neutral.hierarchy import (add_hierarchy, default_transition_s, propagate, small_gmm_from_map, small_gmm_kmeans,
                               transition_matrix)
from gmmplat.io import MapData


def large_gmm(n=300, box=32, apix=2.0, seed=0) -> GMM:
    return GMM(random_gmm(n, box, apix, seed=seed, extent=0.3), box, apix)


def test_rigid_translation_of_small_is_translation_of_large():
    big = large_gmm()
    small = small_gmm_kmeans(big, 12, seed=0)
    W = transition_matrix(small[:, :3], big.params[:, :3], s_angstrom=default_transition_s(big))
    assert W.shape == (12, big.n)
    torch.testing.assert_close(W.sum(0), torch.ones(big.n))
    t = torch.tensor([2.0, -1.5, 0.7])
    moved = propagate(W, t.expand(12, 3))
    torch.testing.assert_close(moved, t.expand(big.n, 3), rtol=0, atol=1e-5)


def test_one_small_gaussian_moves_its_neighbourhood():
    big = large_gmm()
    small = small_gmm_kmeans(big, 12, seed=0)
    W = transition_matrix(small[:, :3].numpy(), big.params[:, :3].numpy(), s_angstrom=4.0)
    offsets = np.zeros((12, 3))
    offsets[0] = [0.0, 0.0, 5.0]
    moved = np.asarray(propagate(torch.as_tensor(W), torch.as_tensor(offsets)))[:, 2]
    d = np.linalg.norm(big.params[:, :3].numpy() - small[0, :3].numpy(), axis=1)
    near, far = moved[d < np.percentile(d, 10)], moved[d > np.percentile(d, 90)]
    assert near.mean() > 2.5 and far.max() < 0.5


def test_paper_kernel_is_s_of_a_tenth_of_the_box():
    rng = np.random.default_rng(0)
    L = 64 * 2.0
    src, tgt = rng.uniform(-30, 30, (5, 3)), rng.uniform(-30, 30, (40, 3))
    D = np.linalg.norm(src[:, None] - tgt[None], axis=-1) / L  # box-fraction units
    paper = np.exp(-50 * D**2)
    np.testing.assert_allclose(transition_matrix(src, tgt, 0.1 * L, normalize=False), paper, rtol=1e-12)
    np.testing.assert_allclose(transition_matrix(src, tgt, 0.1 * L), paper / paper.sum(0), rtol=1e-10)
    far = transition_matrix(src, tgt + 1e4, 1.0)  # far targets: finite weights, columns still sum to 1
    assert np.all(np.isfinite(far)) and np.allclose(far.sum(0), 1.0)


def test_small_gmm_kmeans_keeps_mass_and_centre():
    big = large_gmm()
    small = small_gmm_kmeans(big, 20, seed=1).double()
    mass = lambda p: p[:, 3] * (2 * math.pi * p[:, 4] ** 2) ** 1.5  # noqa: E731
    mb, ms = mass(big.params.double()), mass(small)
    assert ms.sum().item() == pytest.approx(mb.sum().item(), rel=1e-5)
    com_b = (mb[:, None] * big.params[:, :3].double()).sum(0) / mb.sum()
    com_s = (ms[:, None] * small[:, :3]).sum(0) / ms.sum()
    torch.testing.assert_close(com_s, com_b, atol=1e-3, rtol=0)
    with pytest.raises(ConfigError):
        small_gmm_kmeans(big, 100)


def test_small_gmm_fitted_to_map_at_low_resolution():
    big = large_gmm(200, 32, 2.0, seed=4)
    vol = render_map(big.params, 32, 2.0).numpy()
    mp = MapData(vol, 2.0, np.zeros(3))
    small = small_gmm_from_map(mp, 10, resolution_angstrom=16.0, steps=40)
    assert small.shape == (10, 5)
    from gmmplat.neutral.refine import FourierSphere
    sphere = FourierSphere(32, 2.0, 16.0)
    F, G = sphere.map_transform(vol), sphere.gmm_transform(small)
    corr = ((F.conj() * G).real * sphere.weight).sum() / torch.sqrt(
        (F.abs() ** 2 * sphere.weight).sum() * (G.abs() ** 2 * sphere.weight).sum())
    assert corr > 0.95


def test_add_hierarchy_extras_roundtrip(tmp_path):
    big = large_gmm()
    small = small_gmm_kmeans(big, 8)
    W = add_hierarchy(big, small)
    big.save(tmp_path / "g.npz")
    back = GMM.load(tmp_path / "g.npz")
    assert back.extras["small_params"].shape == (8, 5) and back.extras["transition"].shape == (8, big.n)
    np.testing.assert_allclose(back.extras["transition"], W, rtol=1e-6)


def test_transition_matrix_types():
    src, tgt = torch.randn(4, 3, dtype=torch.float64), torch.randn(9, 3, dtype=torch.float64)
    assert transition_matrix(src, tgt, 2.0).dtype == torch.float64
    assert transition_matrix(src.float(), tgt.float(), 2.0).dtype == torch.float32
    assert isinstance(transition_matrix(src.numpy(), tgt.numpy(), 2.0), np.ndarray)
    np.testing.assert_allclose(transition_matrix(src, tgt, 2.0).numpy(), transition_matrix(src.numpy(), tgt.numpy(), 2.0))
