"""Separable projector against the dense N·M·M reference and by property."""
import math

import pytest
import torch

from factories import random_gmm
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import Band
from gmmplat.physics.geometry import random_rotations
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import PROJECTORS, DenseFourierProjector, FourierSeparableProjector


def _batch(B, N, M, apix, seed):
    g = torch.Generator().manual_seed(seed)
    params = torch.stack([random_gmm(N, M, apix, seed=seed + b) for b in range(B)])
    R = random_rotations(B, g).float()
    shifts = (torch.rand(B, 2, generator=g) * 2 - 1) * 5.0
    return params, R, shifts


@pytest.mark.parametrize("N,M,res", [(10, 32, None), (50, 33, None), (200, 64, 8.0), (30, 47, 5.0), (40, 72, None)])
def test_separable_equals_dense(N, M, res):
    apix = 1.7
    band = Band(M, apix, res)
    params, R, shifts = _batch(3, N, M, apix, seed=N)
    ctf = ctf_rfft(
        CTFParams.from_values(3, defocus_u_angstrom=[9000.0, 15000.0, 21000.0], defocus_v_angstrom=12000.0,
                              defocus_angle_deg=33.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1),
        M, apix, band,
    )
    for c in (None, ctf):
        sep = ImageModel(band, FourierSeparableProjector(band)).project(params, R, shifts, c)
        den = ImageModel(band, DenseFourierProjector(band)).project(params, R, shifts, c)
        assert sep.shape == den.shape == (3,) + band.shape
        rel = (sep - den).abs().max() / den.abs().max()
        assert rel < 1e-4, rel


@pytest.mark.parametrize("M", [32, 72])
def test_factor_paths_agree(M, monkeypatch):
    """A cosine and a sine per frequency (up to DIRECT_MAX per axis) and the fine x coarse tables give
    the same projection and gradients (box 32: 17 x 32 frequencies; 72: 37 x 72)."""
    import gmmplat.projectors.separable as sp

    band = Band(M, 1.5, None)
    params, R, shifts = _batch(2, 25, M, 1.5, seed=M)
    out = []
    for limit in (0, 10**6):
        monkeypatch.setattr(sp, "DIRECT_MAX", limit)
        p = params.clone().requires_grad_(True)
        F = ImageModel(band, FourierSeparableProjector(band)).project(p, R, shifts)
        (F.abs() ** 2).sum().backward()
        out.append((F.detach(), p.grad))
    (Fa, ga), (Fb, gb) = out
    assert (Fa - Fb).abs().max() < 1e-5 * Fb.abs().max()
    assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-4 * gb.abs().max())


def test_phasor_equals_polar():
    """The factors' ``modulus · e^{i angle}`` against torch.polar, with and without a modulus."""
    from gmmplat.projectors.separable import _phasor

    g = torch.Generator().manual_seed(0)
    angle = (torch.rand(4, 30, 13, generator=g) - 0.5) * 400.0  # phases of Gaussians far from the centre
    modulus = torch.rand(4, 30, 13, generator=g)
    for m in (modulus, None):
        ref = torch.polar(torch.ones_like(angle) if m is None else m, angle)
        out = _phasor(angle, m)
        assert out.dtype == ref.dtype == torch.complex64
        assert (out - ref).abs().max() < 1e-6


def test_separable_gradients_match_dense():
    band = Band(32, 2.0, 6.0)
    params, R, shifts = _batch(2, 20, 32, 2.0, seed=3)
    grads = []
    for proj in (FourierSeparableProjector(band), DenseFourierProjector(band)):
        p = params.clone().requires_grad_(True)
        target = torch.randn(2, *band.shape, generator=torch.Generator().manual_seed(1), dtype=torch.complex64)
        loss = (ImageModel(band, proj).project(p, R, shifts) - target).abs().pow(2).sum()
        loss.backward()
        grads.append(p.grad)
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], rtol=1e-3, atol=1e-3 * grads[1].abs().max())


def test_shared_params_broadcast_and_registry():
    band = Band(24, 2.0)
    params, R, _ = _batch(4, 5, 24, 2.0, seed=5)
    proj = PROJECTORS.build("separable", band)
    shared = proj(params[0], R)
    each = proj(params[0].expand(4, -1, -1), R)
    assert torch.allclose(shared, each)
    assert set(PROJECTORS.names()) >= {"separable", "dense"}


def test_band_crop_equals_full_grid_cropped():
    band_full, band = Band(48, 1.5), Band(48, 1.5, 6.0)
    params, R, _ = _batch(2, 30, 48, 1.5, seed=7)
    full = FourierSeparableProjector(band_full)(params, R)
    cropped = FourierSeparableProjector(band)(params, R)
    assert torch.allclose(band.crop(full), cropped, atol=1e-4 * full.abs().max())
    assert band.shape[0] * band.shape[1] < 0.3 * band_full.shape[0] * band_full.shape[1]


def test_zero_frequency_is_total_mass():
    """F(0) = Σ a (2πσ²)^{3/2} / apix² : the integral of the projection in pixel units."""
    apix = 1.3
    band = Band(32, apix)
    params, R, _ = _batch(2, 12, 32, apix, seed=9)
    F = FourierSeparableProjector(band)(params, R)
    mass = (params[..., 3] * (2 * math.pi * params[..., 4] ** 2) ** 1.5).sum(-1) / apix**2
    assert torch.allclose(F[:, 0, 0].real, mass, rtol=1e-5)


def test_separable_backward_passes_gradcheck():
    """The hand-written backward of the separable product against finite differences (float64)."""
    from gmmplat.projectors.separable import _SeparableProjection

    g = torch.Generator().manual_seed(4)
    band = Band(12, 1.5)
    proj = FourierSeparableProjector(band).double()
    grid = proj._frequency_grid()
    px, py = (torch.randn(2, 4, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2))
    w = (torch.rand(2, 4, generator=g, dtype=torch.float64) - 0.3).requires_grad_()  # signs of both kinds
    s2 = (torch.rand(2, 4, generator=g, dtype=torch.float64) + 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda *a: _SeparableProjection.apply(*a, grid), (px, py, w, s2))
