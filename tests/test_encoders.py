"""Encoders: shapes, fixed input band, batch independence in eval, gradient input vs autograd."""
import pytest
import torch

from factories import random_gmm
from gmmplat.encoders import ENCODERS, GradientEncoder, ImageEncoder, RunningScale, StepContext
from gmmplat.errors import ConfigError
from gmmplat.io.dataset import Batch
from gmmplat.losses import LOSSES
from gmmplat.model.gmm import GMM
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import Band
from gmmplat.physics.geometry import random_rotations
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import PROJECTORS

M, APIX, N = 24, 3.0, 6


def _setup(B=6, res=9.0, seed=0):
    neutral = GMM(random_gmm(N, M, APIX, seed=seed), M, APIX)
    g = torch.Generator().manual_seed(seed)
    R = random_rotations(B, g).float()
    shifts = torch.randn(B, 2, generator=g) * 2
    ctf = CTFParams.from_values(B, defocus_u_angstrom=torch.linspace(9000, 20000, B), defocus_v_angstrom=11000.0,
                                defocus_angle_deg=20.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    moved = neutral.params + torch.randn(B, N, 5, generator=g) * torch.tensor([2.0, 2.0, 2.0, 0.1, 0.0])
    full = Band(M, APIX)
    images = full.band_to_images(ImageModel(full, PROJECTORS.build("separable", full)).project(
        moved, R, shifts, ctf_rfft(ctf, M, APIX, full)))
    images = images + 0.01 * torch.randn(images.shape, generator=g)
    batch = Batch(images, R, shifts, ctf, torch.arange(B), torch.zeros(B, dtype=torch.long))
    band = Band(M, APIX, res)
    ctx = StepContext(neutral, band, ImageModel(band, PROJECTORS.build("separable", band)), LOSSES.build("frc", band))
    return batch, ctx


def _sub(batch, idx):
    return Batch(batch.images[idx], batch.rotations[idx], batch.shifts_angstrom[idx], batch.ctf.subset(idx),
                 batch.index[idx], batch.sym_index[idx])


def test_registry_names():
    assert {"image", "gradient"} <= set(ENCODERS.names())


@pytest.mark.parametrize("name,opts", [("image", {}), ("image", {"representation": "real"}),
                                       ("image", {"input_res_angstrom": 12.0}), ("gradient", {}),
                                       ("gradient", {"input_res_angstrom": 12.0})])
def test_encoder_shapes_and_eval_batch_independence(name, opts):
    batch, ctx = _setup()
    enc = ENCODERS.build(name, 3, ctx, hidden=(32,), **opts)
    z = enc(batch)  # training mode: sets the running input scale
    assert z.shape == (6, 3) and torch.isfinite(z).all()
    enc.eval()
    z_all = enc(batch)
    z_part = enc(_sub(batch, torch.tensor([4, 1])))
    assert torch.allclose(z_part, z_all[[4, 1]], atol=1e-5)
    assert (z_all[0] - z_all[1]).abs().max() > 1e-4  # particles are told apart


def test_image_encoder_input_band_is_fixed():
    batch, ctx = _setup(res=9.0)
    enc = ImageEncoder(2, ctx, input_res_angstrom=12.0, hidden=(16,))
    assert enc.input_band.high_res_angstrom == 12.0
    n_in = enc.mlp[0].in_features
    assert n_in == 2 * enc.input_band.shape[0] * enc.input_band.shape[1]
    enc.eval()
    z0 = enc(batch)
    wider = Band(M, APIX, 6.0)  # the trainer's next round
    ctx.image_model.set_band(wider)
    ctx.loss.set_band(wider)
    enc.set_context(StepContext(ctx.neutral, wider, ctx.image_model, ctx.loss))
    assert torch.equal(enc(batch), z0)
    assert ImageEncoder(2, ctx).input_band.high_res_angstrom == 9.0  # default: the band at construction
    with pytest.raises(ConfigError):
        ImageEncoder(2, ctx, representation="wavelet")


def _reference_gradient(batch, ctx, band=None):
    """Per-particle d loss / d neutral, one particle at a time (no batching)."""
    band = band or ctx.band
    image_model, loss = ImageModel(band, PROJECTORS.build("separable", band)), LOSSES.build("frc", band)
    out = []
    for b in range(batch.images.shape[0]):
        p = ctx.neutral.params.clone().requires_grad_(True)
        ctf = ctf_rfft(batch.ctf.subset([b]), M, APIX, band)
        pred = image_model.project(p, batch.rotations[b:b + 1], batch.shifts_angstrom[b:b + 1], ctf)
        val = loss(pred, band.images_to_band(batch.images[b:b + 1])).sum()
        out.append(torch.autograd.grad(val, p)[0][:, :4])
    return torch.stack(out)


@pytest.mark.parametrize("res", [None, 12.0])
def test_gradient_encoder_input_equals_autograd(res):
    batch, ctx = _setup()
    enc = GradientEncoder(2, ctx, input_res_angstrom=res, hidden=(16,))
    got = enc.input_gradient(batch)
    ref = _reference_gradient(batch, ctx, None if res is None else Band(M, APIX, res))
    assert got.shape == (6, N, 4)
    assert ref.abs().max() > 0
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5 * ref.abs().max())
    assert not got.requires_grad
    with torch.no_grad():  # analysis: still computed
        assert torch.allclose(enc.input_gradient(batch), got)


def test_gradient_encoder_input_carries_no_graph():
    batch, ctx = _setup()
    ctx.neutral.params.requires_grad_(True)  # even a neutral that requires grad gets none
    enc = GradientEncoder(2, ctx, hidden=(16,))
    z = enc(batch)
    z.pow(2).sum().backward()
    assert ctx.neutral.params.grad is None
    assert enc.neutral_params.grad is None
    assert all(p.grad is not None for p in enc.mlp.parameters())


def test_gradient_encoder_needs_projector_and_loss():
    batch, ctx = _setup()
    with pytest.raises(ConfigError):
        GradientEncoder(2, StepContext(ctx.neutral, ctx.band))


def test_running_scale():
    rs = RunningScale(2, momentum=0.5)
    x = torch.randn(64, 10, 2) * torch.tensor([10.0, 0.1])
    y = rs(x)
    assert torch.allclose(y.pow(2).mean(dim=(0, 1)).sqrt(), torch.ones(2), rtol=0.2)
    first = rs.scale.clone()
    rs(3 * x)
    assert torch.allclose(rs.scale, 2 * first, rtol=1e-5)  # 0.5·s + 0.5·3s
    rs.eval()
    before = rs.scale.clone()
    rs(100 * x)
    assert torch.equal(rs.scale, before)
