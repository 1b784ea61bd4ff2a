"""The contract of every registered step, on every device (CPU always, CUDA when present).

Parametrized over each registry's ``names()``, so a step registered in gmmplat, or by a plugin
named in ``GMMPLAT_TEST_PLUGINS`` (tests/conftest.py), is tested without a new test.  Built-in
steps that need options get them from the tables below; others are built with their defaults.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from factories import devices, random_gmm
from gmmplat.decoders import DECODERS
from gmmplat.encoders import ENCODERS, StepContext
from gmmplat.errors import ConfigError
from gmmplat.io.dataset import Batch
from gmmplat.losses import LOSSES
from gmmplat.model.gmm import GMM, XYZ
from gmmplat.physics.ctf import CTFParams
from gmmplat.physics.fourier import Band
from gmmplat.physics.geometry import random_rotations
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import PROJECTORS
from gmmplat.regularizers import REGULARIZERS, ca_graph

N, D, B, M, APIX = 12, 3, 4, 24, 3.0
DECODER_OPTIONS = {"rigid": {"domains": ["arm", "head"]}}
ENCODER_OPTIONS = {"image": {"hidden": [16]}, "gradient": {"hidden": [16]}}


def neutral() -> GMM:
    """12 Gaussians in a chain (Cα graph extras), masks ``arm`` / ``head``, a 3-Gaussian small GMM."""
    params = random_gmm(N, M, APIX, seed=4)
    extras = dict(ca_graph(params[:, XYZ].double().numpy(), np.arange(N), np.array(["A"] * N)))
    extras.update({"mask__arm": np.arange(N) < 4, "mask__head": np.arange(N) >= 8})
    small = params[::4].clone()
    extras["small_params"] = small.numpy()
    extras["transition"] = torch.exp(-50 * (torch.cdist(small[:, XYZ], params[:, XYZ]) / (M * APIX)) ** 2).numpy()
    return GMM(params, M, APIX, extras=extras)


def batch(device, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    ctf = CTFParams.from_values(B, defocus_u_angstrom=np.linspace(8e3, 2e4, B), defocus_v_angstrom=1.1e4,
                                defocus_angle_deg=20.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    b = Batch(torch.randn(B, M, M, generator=g), random_rotations(B, g).float(), torch.randn(B, 2, generator=g) * 2,
              ctf, torch.arange(B), torch.zeros(B, dtype=torch.long))
    return b.to(device)


def perturb(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g).to(p.device))


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", DECODERS.names())
def test_decoder_contract(name, device):
    """Offsets (B, N, 5) zero for every z at initialisation, zero outside the subset, declared hooks work."""
    gmm = neutral()
    subset = torch.as_tensor(gmm.masks()["arm"] | gmm.masks()["head"])
    torch.manual_seed(0)
    dec = DECODERS.build(name, D, gmm, subset=subset, **DECODER_OPTIONS.get(name, {})).to(device)
    z = torch.randn(B, D, generator=torch.Generator().manual_seed(1)).to(device) * 2
    out = dec(z).detach()
    assert out.shape == (B, N, 5) and out.device.type == device
    # zero at initialisation, up to the float32 rounding of the coordinates (a rigid motion by the
    # identity about a centroid c gives c + (x − c), which may differ from x in the last bit)
    assert float(out.abs().max()) <= 4 * torch.finfo(torch.float32).eps * float(gmm.params[:, XYZ].abs().max())
    perturb(dec)
    out = dec(z)
    assert out[:, subset].abs().max() > 1e-3  # the decoder moves once its weights change: the test can fail
    assert torch.count_nonzero(out[:, ~subset]) == 0
    for value in dec.describe_motion(z).values():
        assert value.shape[0] == B
    assert set(dec.domains) <= set(gmm.masks())
    dec.configure_round({}, trained=True)
    with pytest.raises(ConfigError):
        dec.configure_round({"no_such_round_option": 1}, trained=True)
    again = DECODERS.build(name, D, gmm, subset=subset, **DECODER_OPTIONS.get(name, {})).to(device)
    again.load_state_dict(dec.state_dict())
    assert torch.equal(again(z), out)  # the state dict is the whole decoder


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", PROJECTORS.names())
def test_projector_contract(name, device):
    """Agrees with the dense reference on a band with CTF, moves the image by −origin, differentiable."""
    band = Band(M, APIX, 8.0)
    params = torch.stack([random_gmm(N, M, APIX, seed=s) for s in range(B)]).to(device).requires_grad_(True)
    bt = batch(device)
    got = ImageModel(band, PROJECTORS.build(name, band)).to(device).predict(params, bt)
    ref = ImageModel(band, PROJECTORS.build("dense", band)).to(device).predict(params, bt)
    assert got.shape == (B,) + band.shape and got.device.type == device
    assert float((got - ref).detach().abs().max() / ref.detach().abs().max()) < 1e-4
    got.abs().pow(2).sum().backward()
    assert params.grad is not None and bool(torch.isfinite(params.grad).all()) and params.grad.abs().max() > 0
    # RELION: a Gaussian at the centre, identity pose, origin (+3 px, 0) is imaged at x = −3 px
    full = Band(M, APIX)
    one = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.5 * APIX]], device=device)
    image = full.band_to_images(ImageModel(full, PROJECTORS.build(name, full)).to(device).project(
        one, torch.eye(3, device=device)[None], torch.tensor([[3 * APIX, 0.0]], device=device)))[0]
    row, col = divmod(int(image.argmax()), M)
    assert (row, col) == (M // 2, M // 2 - 3)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_contract(name, device):
    """One finite value per particle, lower for the observed image itself than for noise, differentiable."""
    band = Band(M, APIX, 8.0)
    loss = LOSSES.build(name, band).to(device)
    g = torch.Generator().manual_seed(0)
    observed = band.images_to_band(torch.randn(B, M, M, generator=g)).to(device)
    noise = band.images_to_band(torch.randn(B, M, M, generator=g)).to(device).requires_grad_(True)
    same, other = loss(observed, observed), loss(noise, observed)
    assert same.shape == other.shape == (B,) and bool(torch.isfinite(other).all())
    assert bool((same < other).all())
    other.sum().backward()
    assert noise.grad is not None and bool(torch.isfinite(noise.grad).all())


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", ENCODERS.names())
def test_encoder_contract(name, device, tmp_path):
    """z (B, d), finite; in eval mode a particle's z does not depend on its batch."""
    gmm = neutral()
    band = Band(M, APIX, 8.0)
    ctx = StepContext(gmm, band, ImageModel(band, PROJECTORS.build("separable", band)), LOSSES.build("frc", band))
    torch.manual_seed(0)
    options = dict(ENCODER_OPTIONS.get(name, {}))
    if name == "truth":  # the simulated dataset's truth table: one row per particle
        (tmp_path / "truth.csv").write_text("particle_index,t\n" + "".join(f"{i},{i / B - 0.5}\n" for i in range(B)))
        options["truth_csv"] = str(tmp_path / "truth.csv")
    if name == "fixed":  # latent points given beforehand, one row per particle
        np.save(tmp_path / "z.npy", np.random.default_rng(0).standard_normal((B, D)))
        options["latent_npy"] = str(tmp_path / "z.npy")
    enc = ENCODERS.build(name, D, ctx, **options).to(device)
    bt = batch(device)
    z = enc(bt)
    assert z.shape == (B, D) and z.device.type == device and bool(torch.isfinite(z).all())
    enc.eval()
    with torch.no_grad():
        whole = enc(bt)
        alone = enc(Batch(bt.images[:1], bt.rotations[:1], bt.shifts_angstrom[:1], bt.ctf.subset([0]),
                          bt.index[:1], bt.sym_index[:1]))
    torch.testing.assert_close(alone, whole[:1], rtol=1e-4, atol=1e-5)


# the elastic network's default (batch) reference couples a batch's GMMs, so its per-GMM contract is
# checked with the neutral reference; tests/test_elastic_network.py covers the batch one
PER_GMM_OPTIONS = {"elastic_network": {"reference": "neutral"}}


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("name", REGULARIZERS.names())
def test_regularizer_contract(name, device):
    """A finite scalar for a batch of GMMs (B, N, 5), differentiable with respect to them; the
    weight multiplies the batch mean of the unweighted penalty; zero gradient at the neutral GMM."""
    gmm = neutral()
    options = PER_GMM_OPTIONS.get(name, {})
    reg = REGULARIZERS.build(name, gmm, weight=1.0, **options).to(device)
    params = (gmm.params[None].repeat(B, 1, 1) + 0.3 * torch.randn(B, N, 5)).to(device).requires_grad_(True)
    value = reg(params)
    assert value.shape == () and bool(torch.isfinite(value))
    value.backward()
    assert params.grad is not None and bool(torch.isfinite(params.grad).all())
    # forward = weight × the batch mean of the penalty, and the neutral GMM is a minimum
    weighted = REGULARIZERS.build(name, gmm, weight=2.5, **options).to(device)
    moved = params[1].detach()
    pair = torch.stack([gmm.params.to(device), moved]).requires_grad_(True)
    value = weighted(pair)
    assert value.item() == pytest.approx(2.5 * 0.5 * weighted.penalty(moved).item(), rel=1e-4)
    value.backward()
    assert float(pair.grad[0].abs().max()) < 1e-5
