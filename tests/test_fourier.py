import pytest
import torch

from gmmplat.errors import ConfigError
from gmmplat.physics.fourier import Band, image_to_rfft, rfft_to_image


@pytest.mark.parametrize("box", [32, 33])
def test_centred_transform_roundtrip_and_phase_origin(box):
    img = torch.zeros(box, box, dtype=torch.float64)
    img[box // 2, box // 2] = 1.0  # a delta at the box centre has a real, flat transform
    F = image_to_rfft(img)
    assert torch.allclose(F, torch.ones_like(F))
    x = torch.randn(3, box, box, dtype=torch.float64)
    assert torch.allclose(rfft_to_image(image_to_rfft(x), box), x)


def test_band_selects_resolution_disc():
    band = Band(64, 2.0, high_res_angstrom=8.0, low_res_angstrom=40.0)
    r = 64 * 2.0 / 8.0  # 16 Fourier pixels
    assert band.shape == (2 * 16 + 1, 17)
    k = torch.sqrt(band.ky[:, None] ** 2 + band.kx[None, :] ** 2)
    assert (k[band.in_band] <= 1 / 8.0 + 1e-9).all() and (k[band.in_band] >= 1 / 40.0 - 1e-9).all()
    assert int(band.radius_px.max().round()) == int(round(r * 2**0.5))


def test_band_crop_uncrop_and_images():
    band = Band(32, 1.0, 4.0)
    x = torch.randn(2, 32, 32, dtype=torch.float64)
    Fb = band.images_to_band(x)
    back = band.crop(band.uncrop(Fb))
    assert torch.equal(back, Fb)
    # low-pass image has no power beyond the band
    lp = band.band_to_images(Fb)
    assert torch.allclose(band.images_to_band(lp), Fb)


def test_band_errors():
    with pytest.raises(ConfigError, match="beyond Nyquist"):
        Band(64, 2.0, high_res_angstrom=3.0)
    with pytest.raises(ConfigError, match="larger than"):
        Band(64, 2.0, high_res_angstrom=10.0, low_res_angstrom=8.0)
