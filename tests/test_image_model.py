"""The forward model: band -> CTF -> projector, in one place."""
import torch

from factories import random_gmm
from gmmplat.io.dataset import Batch
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import Band
from gmmplat.physics.geometry import random_rotations
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import PROJECTORS

M, APIX, B = 32, 2.0, 3


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ctf = CTFParams.from_values(B, defocus_u_angstrom=[9000.0, 15000.0, 21000.0], defocus_v_angstrom=12000.0,
                                defocus_angle_deg=33.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1,
                                bfactor=30.0)
    return Batch(torch.randn(B, M, M, generator=g), random_rotations(B, g).float(),
                 torch.randn(B, 2, generator=g) * 3, ctf, torch.arange(B), torch.zeros(B, dtype=torch.long))


def test_predict_is_projection_times_ctf_on_the_band():
    """The bare projection, moved by −origin (a phase ramp e^{+2πi k·origin}), times the CTF."""
    band = Band(M, APIX, 6.0)
    model = ImageModel(band, PROJECTORS.build("separable", band))
    batch, params = _batch(), random_gmm(10, M, APIX, seed=2)
    s = batch.shifts_angstrom
    kx, ky = band.kx.float(), band.ky.float()[:, None]
    ramp = torch.exp(2j * torch.pi * (s[:, 0, None, None] * kx + s[:, 1, None, None] * ky))
    expected = PROJECTORS.build("dense", band)(params, batch.rotations) * ramp * ctf_rfft(batch.ctf, M, APIX, band)
    got = model.predict(params, batch)
    assert got.shape == (B,) + band.shape
    assert ((got - expected).abs().max() / expected.abs().max()) < 1e-4
    assert torch.equal(model.observe(batch), band.images_to_band(batch.images))
    assert model.predict_images(params, batch).shape == (B, M, M)
    assert torch.equal(model.predict(params, batch, ctf=model.ctf(batch.ctf)), got)  # a CTF computed once
    flat = model.predict(params, batch, ctf=torch.ones_like(model.ctf(batch.ctf)))  # the given CTF is used
    assert not torch.allclose(flat, got)


def test_set_band_moves_projector_and_ctf_together():
    band, wider = Band(M, APIX, 10.0), Band(M, APIX, 5.0)
    model = ImageModel(band, PROJECTORS.build("separable", band))
    batch, params = _batch(1), random_gmm(8, M, APIX, seed=3)
    coarse = model.predict(params, batch)
    model.set_band(wider)
    assert model.projector.band is wider
    fine = model.predict(params, batch)
    assert fine.shape == (B,) + wider.shape and fine.shape != coarse.shape
    full = ImageModel(Band(M, APIX), PROJECTORS.build("separable", Band(M, APIX))).predict(params, batch)
    assert ((fine - wider.crop(full)).abs().max() / full.abs().max()) < 1e-4
