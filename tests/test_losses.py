"""Losses: FRC against a full-plane NumPy reference and by property; weighted L2."""
import numpy as np
import pytest
import torch

from gmmplat.errors import ConfigError
from gmmplat.losses import LOSSES, FRCLoss, WeightedL2Loss
from gmmplat.physics.fourier import Band


def _images(B, M, seed):
    """Smooth-ish random real images (B, M, M)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, M, M, generator=g)
    k = torch.fft.rfftfreq(M)[None, :] ** 2 + torch.fft.fftfreq(M)[:, None] ** 2
    return torch.fft.irfft2(torch.fft.rfft2(x) * torch.exp(-20 * k), s=(M, M)) + 0.3 * x


def _frc_reference(pred_img, obs_img, band, exclude_dc=True):
    """Mean FRC over the band's rings, from full-plane FFTs of real images (NumPy)."""
    M = band.box
    P = np.fft.fft2(np.fft.ifftshift(pred_img, axes=(-2, -1)))
    O = np.fft.fft2(np.fft.ifftshift(obs_img, axes=(-2, -1)))
    f = np.fft.fftfreq(M) * M
    r = np.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    kmax = M * band.pixel_size_angstrom / band.high_res_angstrom
    kmin = 0.0 if band.low_res_angstrom is None else M * band.pixel_size_angstrom / band.low_res_angstrom
    used = (r <= kmax + 1e-6) & (r >= kmin - 1e-6) & ((r > 0) if exclude_dc else True)
    ring = np.round(r).astype(int)
    out = []
    for b in range(P.shape[0]):
        frcs = []
        for q in np.unique(ring[used]):
            sel = used & (ring == q)
            num = np.real(np.sum(P[b][sel] * np.conj(O[b][sel])))
            den = np.sqrt(np.sum(np.abs(P[b][sel]) ** 2) * np.sum(np.abs(O[b][sel]) ** 2))
            frcs.append(num / den)
        out.append(1 - np.mean(frcs))
    return np.array(out)


@pytest.mark.parametrize("M,res,low", [(32, None, None), (33, 6.0, None), (40, 5.0, 30.0)])
def test_frc_matches_full_plane_reference(M, res, low):
    band = Band(M, 1.5, res, low)
    pred, obs = _images(3, M, 1), _images(3, M, 2) + 0.5 * _images(3, M, 1)
    loss = FRCLoss(band)(band.images_to_band(pred), band.images_to_band(obs))
    ref = _frc_reference(pred.double().numpy(), obs.double().numpy(), band)
    assert loss.shape == (3,)
    assert 0.05 < ref.min() and ref.max() < 0.95  # partially correlated: a meaningful comparison
    np.testing.assert_allclose(loss.numpy(), ref, atol=2e-5)


def test_frc_zero_for_positive_scale_and_two_for_negative():
    band = Band(32, 2.0, 5.0, 40.0)
    obs = band.images_to_band(_images(4, 32, 3))
    frc = LOSSES.build("frc", band)
    for c in (0.01, 1.0, 37.0):
        assert frc(c * obs, obs).abs().max() < 1e-5
    assert (frc(-obs, obs) - 2).abs().max() < 1e-5


def test_frc_about_one_for_independent_noise():
    band = Band(48, 2.0)
    frc = FRCLoss(band)
    loss = frc(band.images_to_band(torch.randn(64, 48, 48)), band.images_to_band(torch.randn(64, 48, 48)))
    assert abs(loss.mean().item() - 1) < 0.02
    assert loss.std().item() < 0.1


@pytest.mark.parametrize("cls", [FRCLoss, WeightedL2Loss])
def test_losses_ignore_frequencies_outside_band(cls):
    band = Band(32, 2.0, 6.0, 30.0)  # the cropped square holds cells outside both limits
    outside = ~band.in_band
    assert outside.sum() > 5
    pred, obs = band.images_to_band(_images(3, 32, 4)), band.images_to_band(_images(3, 32, 5))
    loss = cls(band)
    g = torch.Generator().manual_seed(9)
    junk = torch.randn(2, 3, *band.shape, generator=g, dtype=torch.complex64) * 100
    pred2 = torch.where(outside, junk[0], pred)
    obs2 = torch.where(outside, junk[1], obs)
    assert torch.allclose(loss(pred2, obs2), loss(pred, obs), atol=1e-6)
    inside = band.in_band & (band.radius_px > 0)
    assert not torch.allclose(loss(torch.where(inside, junk[0], pred), obs), loss(pred, obs), atol=1e-3)


def test_weighted_l2_scale_fit():
    band = Band(32, 2.0, 5.0)
    obs = band.images_to_band(_images(3, 32, 6))
    fitted = LOSSES.build("weighted_l2", band)
    fixed = WeightedL2Loss(band, fit_scale=False)
    assert fixed(obs, obs).abs().max() < 1e-5
    assert fitted(2.5 * obs, obs).abs().max() < 1e-5
    assert torch.allclose(fixed(2.5 * obs, obs), torch.full((3,), 1.5**2), rtol=1e-4)
    # the fitted scale is the least-squares one: no scale on a fine grid does better
    pred = band.images_to_band(_images(3, 32, 7)) + 0.5 * obs
    best = fitted(pred, obs)
    grid = torch.stack([fixed(s * pred, obs) for s in torch.linspace(0.0, 3.0, 601)])
    assert torch.all(best <= grid.min(0).values + 1e-5)
    assert torch.all(best >= grid.min(0).values - 1e-3)
    noise = fitted(band.images_to_band(torch.randn(32, 32, 32)), band.images_to_band(torch.randn(32, 32, 32)))
    assert abs(noise.mean().item() - 1) < 0.05


@pytest.mark.parametrize("name", ["frc", "weighted_l2"])
def test_losses_differentiable_and_set_band(name):
    band = Band(32, 2.0, 8.0)
    loss = LOSSES.build(name, band)
    obs = band.images_to_band(_images(2, 32, 8))
    pred = (0.3 * obs + band.images_to_band(_images(2, 32, 9))).requires_grad_(True)
    loss(pred, obs).sum().backward()
    assert pred.grad.abs().max() > 0
    wide = Band(32, 2.0, 4.0)
    loss.set_band(wide)
    obs_w = wide.images_to_band(_images(2, 32, 8))
    assert loss(obs_w * 3, obs_w).abs().max() < 1e-5  # both are blind to a positive scale
    assert loss(wide.images_to_band(_images(2, 32, 9)), obs_w).shape == (2,)


def test_band_without_rings_is_refused():
    with pytest.raises(ConfigError, match="no frequency"):
        FRCLoss(Band(16, 2.0, 40.0))  # only the DC cell, which the loss leaves out
