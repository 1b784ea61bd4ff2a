"""Refinement in 3D Fourier space: equivalence to matching projections, FSC gain, amplitude scaling."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from factories import random_gmm
from gmmplat.io import MapData, read_map, read_model
from gmmplat.model.gmm import render_map
from gmmplat.neutral import FourierSphere, build_from_model, fit_amplitude_scales, gmm_map_fsc, refine_gmm, scale_to_map
from gmmplat.physics.fourier import Band
from gmmplat.projectors import PROJECTORS
from gmmplat.regularizers import REGULARIZERS
from test_build_helpers import bundle, write_model, write_model_map


def _fibonacci_frames(n: int) -> torch.Tensor:
    """``n`` RELION matrices whose viewing directions (third rows) cover the sphere evenly."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = math.pi * (1 + 5**0.5) * i
    v = np.c_[np.sqrt(1 - z * z) * np.cos(phi), np.sqrt(1 - z * z) * np.sin(phi), z]
    frames = []
    for n_ in v:
        a = np.cross(n_, np.eye(3)[np.argmin(np.abs(n_))])
        a /= np.linalg.norm(a)
        frames.append(np.stack([a, np.cross(n_, a), n_]))
    return torch.tensor(np.array(frames), dtype=torch.float32)


def test_projection_weighting_equals_average_over_projections():
    """Fourier slice theorem: mean over directions of Σ_2D |ΔP|² = apix/(2M) · Σ_3D |ΔF|²/|k| (band ≤ 1/d, k ≠ 0).

    The reference side uses the separable 2D projector on 400 evenly spread directions.
    """
    M, apix, d = 32, 1.5, 5.0
    R = _fibonacci_frames(400)
    band = Band(M, apix, d)
    proj = PROJECTORS.build("separable", band)
    k2 = band.ky[:, None] ** 2 + band.kx[None, :] ** 2
    w2 = torch.where(band.kx > 0, 2.0, 1.0)[None, :] * (band.in_band & (k2 > 0))
    ratios = {}
    for weighting in ("projection", "uniform"):
        sphere = FourierSphere(M, apix, d, weighting)
        for case in ("shifted", "other", "sharper"):
            a = random_gmm(20, M, apix, seed=1)
            b = a.clone()
            if case == "shifted":
                b[:, :3] += torch.randn(20, 3, generator=torch.Generator().manual_seed(0)) * 2.0
            elif case == "sharper":  # differences mostly at high frequency
                b[:, 4] *= 0.7
            else:
                b = random_gmm(20, M, apix, seed=10)
            s3 = (sphere.weight * (sphere.gmm_transform(a) - sphere.gmm_transform(b)).abs() ** 2).sum().item()
            s2 = ((proj(a, R) - proj(b, R)).abs() ** 2 * w2).sum((1, 2)).mean().item()
            ratios[weighting, case] = s2 / s3
    for case in ("shifted", "other"):
        assert ratios["projection", case] == pytest.approx(apix / (2 * M), rel=0.03)
    # w = 1 is not proportional to the projection average: the ratio depends on where the differences lie
    assert ratios["uniform", "sharper"] / ratios["uniform", "shifted"] > 1.5


def test_sphere_transform_matches_render_map():
    p = random_gmm(15, 24, 2.0, seed=3)
    sphere = FourierSphere(24, 2.0, 5.0)
    vol = render_map(p, 24, 2.0)
    G = sphere.gmm_transform(p)
    F = sphere.map_transform(vol.numpy())
    assert ((G - F).abs() * sphere.mask).max() / F.abs().max() < 1e-4


@pytest.fixture(scope="module")
def bundle_case(tmp_path_factory):
    d = tmp_path_factory.mktemp("refine")
    model = bundle()
    write_model(d / "model.pdb", model)
    write_model_map(d / "map.mrc", model, noise=0.02)
    return read_model(d / "model.pdb", selection="ca"), read_map(d / "map.mrc")


def test_refinement_raises_fsc(bundle_case):
    atoms, mp = bundle_case
    gmm = scale_to_map(build_from_model(atoms, mp, 6.0), mp, 6.0)[0]
    g = torch.Generator().manual_seed(0)
    bad = gmm.params.clone()
    bad[:, :3] += torch.randn(gmm.n, 3, generator=g) * 1.0
    bad[:, 3] *= 0.5 + torch.rand(gmm.n, generator=g)
    gmm.params = bad
    f0, c0, r0 = gmm_map_fsc(gmm, mp)
    reg = REGULARIZERS.build("ca_backbone", gmm, weight=0.1)
    res = refine_gmm(gmm, mp, 6.0, steps=80, regularizer=reg)
    f1, c1, r1 = gmm_map_fsc(res.gmm, mp)
    assert res.data_loss[-1] < 0.7 * res.data_loss[0]
    shells = (f0 > 0) & (f0 <= 1 / 6.0)
    assert c1[shells].mean() > c0[shells].mean() + 0.05
    assert r1 < r0 - 0.3
    assert res.gmm.extras.keys() == gmm.extras.keys()


def test_amplitude_scales_per_origin_group():
    p = random_gmm(12, 24, 2.0, seed=5)
    vol = render_map(p, 24, 2.0).numpy()
    groups = np.r_[np.zeros(6, int), np.ones(6, int)]
    scaled = p.clone()
    scaled[:6, 3] /= 3.0
    scaled[6:, 3] *= 5.0
    mp = MapData(vol + 7.0, 2.0, np.zeros(3))  # a constant offset (k = 0) must not matter
    s = fit_amplitude_scales(scaled, groups, mp, 5.0)
    np.testing.assert_allclose(s, [3.0, 0.2], rtol=1e-3)


def _reference_transform(p: torch.Tensor, sphere: FourierSphere) -> torch.Tensor:
    """Plain autograd evaluation of the GMM's 3D transform on the sphere grid (float64)."""
    kz, ky, kx = sphere.kz, sphere.ky, sphere.kx
    K = torch.stack(torch.meshgrid(kz, ky, kx, indexing="ij"), -1)[..., [2, 1, 0]]  # (Kz, Ky, Kx, 3): kx, ky, kz
    k2 = (K**2).sum(-1)
    w = p[:, 3] * (2 * math.pi * p[:, 4] ** 2) ** 1.5 / sphere.pixel_size_angstrom**3
    phase = -2 * math.pi * torch.einsum("zyxc,nc->nzyx", K, p[:, :3])
    amp = w[:, None, None, None] * torch.exp(-2 * math.pi**2 * p[:, 4, None, None, None] ** 2 * k2)
    return torch.polar(amp, phase).sum(0)


@pytest.mark.parametrize("chunk_elements", [None, 50])
def test_sphere_transform_gradients_match_autograd_reference(monkeypatch, chunk_elements):
    # 50 elements: one z row per slab, so the slabs and their y subsets are exercised
    if chunk_elements:
        monkeypatch.setattr("gmmplat.neutral.refine._CHUNK_ELEMENTS", chunk_elements)
    sphere = FourierSphere(20, 2.0, 6.0)
    p = random_gmm(7, 20, 2.0, seed=8).double()
    target = sphere.gmm_transform(random_gmm(7, 20, 2.0, seed=9).double()).detach()
    grads = []
    for fn in (sphere.gmm_transform, lambda q: _reference_transform(q, sphere)):
        q = p.clone().requires_grad_(True)
        G = fn(q)
        assert G.shape == sphere.mask.shape
        (sphere.weight.double() * (G - target).abs() ** 2).sum().backward()
        grads.append((G.detach(), q.grad))
    inside = sphere.mask
    torch.testing.assert_close(grads[0][0][inside], grads[1][0][inside], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(grads[0][1], grads[1][1], rtol=1e-7, atol=1e-9)
