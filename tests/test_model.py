"""The composed model: neutral at initialisation, latent noise and penalty, tiny end-to-end overfit."""
import pytest
import torch

from gmmplat.decoders import DECODERS, MultiDecoder
from gmmplat.encoders import ENCODERS, StepContext
from gmmplat.io.dataset import Batch
from gmmplat.losses import LOSSES
from gmmplat.model.gmm import GMM
from gmmplat.model.hetero import HeteroModel
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import Band
from gmmplat.physics.geometry import random_rotations
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import PROJECTORS

M, APIX = 24, 3.0


def _two_state_data(B=64, seed=1):
    """Noise-free CTF-modulated projections of a 2-Gaussian GMM in two conformations.

    The second Gaussian sits at x = 2 Å (label 0) or x = 10 Å (label 1); the neutral
    GMM has it half-way, at 6 Å.
    """
    neutral = GMM.from_arrays([[-8.0, 0.0, 0.0], [6.0, 0.0, 0.0]], 1.0, 4.0, M, APIX)
    conf = neutral.params.repeat(2, 1, 1)
    conf[0, 1, 0], conf[1, 1, 0] = 2.0, 10.0
    g = torch.Generator().manual_seed(seed)
    R = random_rotations(B, g).float()
    shifts = torch.zeros(B, 2)
    labels = torch.arange(B) % 2
    defocus = torch.linspace(8000.0, 20000.0, B)
    ctf = CTFParams.from_values(B, defocus_u_angstrom=defocus, defocus_v_angstrom=defocus, defocus_angle_deg=0.0,
                                voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    full = Band(M, APIX)
    images = full.band_to_images(ImageModel(full, PROJECTORS.build("separable", full)).project(
        conf[labels], R, shifts, ctf_rfft(ctf, M, APIX, full)))
    batch = Batch(images, R, shifts, ctf, torch.arange(B), torch.zeros(B, dtype=torch.long))
    return neutral, batch, labels


def _model(neutral, band, latent_dim=2, **kw):
    ctx = StepContext(neutral, band, ImageModel(band, PROJECTORS.build("separable", band)), LOSSES.build("frc", band))
    enc = ENCODERS.build("image", latent_dim, ctx, hidden=(64, 64))
    dec = DECODERS.build("free", latent_dim, neutral, move_amplitude=False, hidden=(32,))
    return HeteroModel(enc, MultiDecoder([dec]), neutral, **kw), ctx


def test_model_neutral_at_initialisation_and_noise():
    neutral, batch, _ = _two_state_data(B=8)
    model, _ = _model(neutral, Band(M, APIX, 8.0))
    params, z = model(batch, generator=torch.Generator().manual_seed(0))
    assert params.shape == (8, 2, 5) and z.shape == (8, 2)
    assert torch.equal(params, neutral.params.expand(8, -1, -1))
    assert torch.allclose(model.decode(torch.randn(5, 2) * 3), neutral.params.expand(5, -1, -1))
    with torch.no_grad():  # make the decoder move, then noise in z shows in the GMMs
        for p in model.decoder.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(2)))
    model.eval()
    z_clean = model.encode(batch)
    p_train, z_train = model(batch, training=True, generator=torch.Generator().manual_seed(0))
    p_again, _ = model(batch, training=True, generator=torch.Generator().manual_seed(0))
    p_eval, z_eval = model(batch, training=False)
    assert torch.equal(z_train, z_clean) and torch.equal(z_eval, z_clean)  # z is returned without noise
    assert torch.equal(p_train, p_again)  # the noise comes from the generator given
    assert torch.allclose(p_eval, model.params_from_z(z_clean))
    assert (p_train - p_eval).abs().max() > 1e-4
    quiet, _ = _model(neutral, Band(M, APIX, 8.0), latent_noise_std=0.0)
    quiet.decoder.load_state_dict(model.decoder.state_dict())
    quiet.encoder.load_state_dict(model.encoder.state_dict())
    quiet.eval()
    assert torch.allclose(quiet(batch, training=True)[0], p_eval)


def test_latent_penalty():
    neutral, _, _ = _two_state_data(B=2)
    model, _ = _model(neutral, Band(M, APIX, 8.0), latent_penalty=0.5)
    assert model.latent_penalty_term(torch.tensor([[0.6, 0.0], [0.0, -0.99]])) == 0
    z = torch.tensor([[2.0, 0.0], [0.0, 0.5]], requires_grad=True)
    val = model.latent_penalty_term(z)
    assert torch.isclose(val, torch.tensor(0.5 * (4.0 - 1.0) / 2))
    val.backward()
    assert z.grad[0, 0] > 0 and z.grad[1, 1] == 0


def test_latent_shrink_pulls_every_latent_vector_towards_zero():
    neutral, _, _ = _two_state_data(B=2)
    model, _ = _model(neutral, Band(M, APIX, 8.0), latent_penalty=0.5, latent_shrink=0.2)
    z = torch.tensor([[2.0, 0.0], [0.0, 0.5]], requires_grad=True)
    val = model.latent_penalty_term(z)
    assert torch.isclose(val, torch.tensor(0.5 * (4.0 - 1.0) / 2 + 0.2 * (4.0 + 0.25) / 2))
    val.backward()
    assert z.grad[1, 1] > 0 and z.grad[0, 1] == 0


@pytest.fixture
def one_thread():
    """Tiny tensors: intra-op threads only contend with the other processes on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_overfit_separates_two_conformations(one_thread):
    torch.manual_seed(0)  # network initialisation
    neutral, batch, labels = _two_state_data()
    band = Band(M, APIX, 8.0)
    model, ctx = _model(neutral, band)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    observed = ctx.image_model.observe(batch)
    gen = torch.Generator().manual_seed(0)

    def loss_of(params):
        return ctx.loss(ctx.image_model.predict(params, batch), observed).mean()

    start = loss_of(neutral.params).item()
    for _ in range(200):
        params, z = model(batch, generator=gen)
        total = loss_of(params) + model.latent_penalty_term(z)
        opt.zero_grad()
        total.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        z = model.encode(batch)
        params = model.decode(z)
        end = loss_of(params).item()
    assert end < 0.1 * start, (start, end)
    za, zb = z[labels == 0], z[labels == 1]
    u = (zb.mean(0) - za.mean(0))
    u = u / u.norm()
    pa, pb = za @ u, zb @ u
    gap = pb.min() - pa.max()
    assert gap > 0.5 * (pb.mean() - pa.mean()), (pa, pb)  # the classes do not overlap along u
    assert gap > 3 * max(pa.std(), pb.std())
    x_second = params[:, 1, 0]  # the moving Gaussian lands where each class put it
    assert (x_second[labels == 0] - 2.0).abs().median() < 1.0
    assert (x_second[labels == 1] - 10.0).abs().median() < 1.0
