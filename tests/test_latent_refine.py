"""Latent refinement (gmmplat.refine.latent): the likelihood is the real-space Gaussian one, the
noise estimate is the noise, refinement recovers the conformation a noisy encoder blurred, and a
trained run writes both latents."""
from __future__ import annotations

import json
import math

from dataclasses import replace

import numpy as np
import pytest
import torch
from test_train_fixtures import make_dataset, moved_params, one_thread  # noqa: F401

from gmmplat.errors import ConfigError, InputError
from gmmplat.io.dataset import ParticleDataset
from gmmplat.losses.base import RingSums
from gmmplat.model.gmm import GMM
from gmmplat.physics.fourier import Band
from gmmplat.refine.latent import log_likelihood, noise_per_ring, refine_latent, ring_residuals
from gmmplat.train import RunConfig, Trainer, load_run


def band_limited(x: torch.Tensor, band: Band) -> torch.Tensor:
    """Zero-mean images whose spectrum lies inside the band's circle (Parseval holds on the band)."""
    F = band.images_to_band(x) * band.in_band
    F[..., 0, 0] = 0
    return band.band_to_images(F)


@pytest.mark.parametrize("box", [24, 25])
def test_log_likelihood_is_the_real_space_gaussian_one(box):
    """Σ over rings of ρ / (2 σ²_r), with σ²_r = M² σ², equals Σ_pixels (y − s x)² / (2σ²) computed in real space."""
    g = torch.Generator().manual_seed(0)
    band = Band(box, 2.0)
    rings = RingSums(band)
    y = band_limited(torch.randn(3, box, box, generator=g, dtype=torch.float64), band)
    x = band_limited(torch.randn(3, box, box, generator=g, dtype=torch.float64), band)
    sigma = 0.7
    sums = ring_residuals(band.images_to_band(y), band.images_to_band(x), rings).numpy()
    noise = np.full(rings.n_rings, box**2 * sigma**2)
    ll = log_likelihood(sums[:, None, :], noise)[:, 0]
    s = (x * y).sum((-1, -2)) / (x * x).sum((-1, -2))  # least-squares scale, real space
    direct = -((y - s[:, None, None] * x) ** 2).sum((-1, -2)) / (2 * sigma**2)
    np.testing.assert_allclose(ll, direct.numpy(), rtol=1e-9)
    assert np.all(np.diff(rings.rings.numpy()) > 0) and rings.rings[0] > 0  # DC left out, rings in order
    np.testing.assert_allclose(log_likelihood(sums[:, None, :], noise, temperature=2.0), ll[:, None] / 2)


def test_noise_per_ring_is_the_white_noise_power():
    box, sigma = 32, 0.5
    band = Band(box, 2.0)
    rings = RingSums(band)
    g = torch.Generator().manual_seed(1)
    signal = band_limited(torch.randn(400, box, box, generator=g), band)
    y = signal + sigma * torch.randn(400, box, box, generator=g)
    good = ring_residuals(band.images_to_band(y), band.images_to_band(signal), rings)  # (n, R)
    bad = ring_residuals(band.images_to_band(y), band.images_to_band(signal.roll(1, 0)), rings)
    noise = noise_per_ring(torch.stack([bad, good], 1).numpy(), rings)
    np.testing.assert_allclose(noise / (box**2 * sigma**2), 1.0, atol=0.12)  # every ring
    assert abs(noise.mean() / (box**2 * sigma**2) - 1) < 0.02


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    star, gmm, t = make_dataset(tmp_path_factory.mktemp("refine"), n=120, snr=0.5, seed=3)
    return star, gmm, t


def _decode(neutral):
    def decode(z):
        return moved_params(neutral, z[:, 0].numpy())
    return decode


def test_refinement_recovers_what_a_noisy_encoder_blurred(shifted):
    """Decoder = the true motion (domain shifted by 5 Å · z0); encoder latent = t + N(0, 0.5) in z0 and
    noise in z1.  The refined z0 follows t far better, and z = posterior · anchors."""
    from scipy.stats import spearmanr

    star, gmm, t = shifted
    neutral = GMM.load(gmm)
    data = ParticleDataset(star, cache_mb=0)
    g = np.random.default_rng(0)
    z = np.stack([t + 0.5 * g.standard_normal(len(t)), 0.3 * g.standard_normal(len(t))], 1)
    r = refine_latent(_decode(neutral), data, z, n_anchors=12, high_res_angstrom=None, noise_particles=50)
    before = abs(spearmanr(z[:, 0], t).statistic)
    after = abs(spearmanr(r.latent[:, 0], t).statistic)
    assert before < 0.8 and after > 0.9, (before, after)
    np.testing.assert_allclose(r.posterior.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(r.latent, r.posterior.astype(np.float64) @ r.anchors, atol=1e-5)
    assert r.anchors.shape == (12, 2) and abs(r.prior.sum() - 1) < 1e-9
    s = r.summary()
    assert s["n_anchors"] == 12 and s["options"]["noise_particles"] == 50 and len(s["noise_per_ring"]) > 3
    again = refine_latent(_decode(neutral), data, z, n_anchors=12, high_res_angstrom=None, noise_particles=50)
    np.testing.assert_array_equal(again.latent, r.latent)  # deterministic
    hot = refine_latent(_decode(neutral), data, z, n_anchors=12, high_res_angstrom=None, noise_particles=50,
                        temperature=50.0)
    assert hot.summary()["mean_posterior_entropy"] > s["mean_posterior_entropy"]


def test_refinement_input_errors(shifted):
    star, gmm, t = shifted
    data = ParticleDataset(star, cache_mb=0)
    dec = _decode(GMM.load(gmm))
    with pytest.raises(ConfigError, match="latent points for 120 particles"):
        refine_latent(dec, data, np.zeros((5, 2)))
    with pytest.raises(ConfigError, match="temperature"):
        refine_latent(dec, data, np.zeros((120, 2)), temperature=0.0)
    for bad, words in (({"anchors": 1}, "at least 2"), ({"temperature": 0}, "temperature"),
                       ({"anchors": 2.5}, "integer"), ({"high_res_angstrom": -3}, "high_res_angstrom"),
                       ({"bands": 3}, "unknown key")):
        with pytest.raises(ConfigError, match=words):
            RunConfig.from_dict({"decoders": {"d": {"kind": "free"}}, "rounds": [{"epochs": 1, "decoders": ["d"]}],
                                 "refine": bad})


def _tiny_config(star, gmm, refine=None) -> RunConfig:
    d = {"latent_dim": 2, "latent_noise_std": 0.05,
         "encoder": {"kind": "image", "options": {"hidden": [16], "input_res_angstrom": 12.0}},
         "decoders": {"dom": {"kind": "rigid", "options": {"domains": ["domain"], "hidden": [16]}}},
         "rounds": [{"decoders": ["dom"], "epochs": 1, "batch_size": 24, "high_res_angstrom": 12.0}],
         "data": {"star": str(star), "gmm": str(gmm)}}
    return RunConfig.from_dict({**d, "refine": refine} if refine else d)


def test_trained_run_writes_refined_and_encoder_latents(shifted, tmp_path, monkeypatch):
    """latent.npy = the refined points, latent_encoder.npy = the encoder's (the same as a run without
    refinement), refine.json the record; the morph reference is the encoder points' median."""
    import gmmplat.refine.latent as lr
    from gmmplat.analysis.morph_reference import reference_latent, reference_latent_of
    from gmmplat.analysis.runs import load_analysis_run

    star, gmm, t = shifted
    real = lr.refine_latent
    seen = {}

    def refine_with_the_true_motion(decode, dataset, z, **kw):  # the 1-epoch decoder knows no motion yet
        seen.update(kw)
        return real(_decode(GMM.load(gmm)), dataset, z, **kw)

    monkeypatch.setattr(lr, "refine_latent", refine_with_the_true_motion)
    Trainer(_tiny_config(star, gmm, {"anchors": 6, "high_res_angstrom": 12.0}), tmp_path / "on", progress=False).run()
    Trainer(_tiny_config(star, gmm), tmp_path / "off", progress=False).run()
    on, off = tmp_path / "on", tmp_path / "off"
    assert seen["n_anchors"] == 6 and seen["high_res_angstrom"] == 12.0 and seen["temperature"] == 1.0
    z, z_enc = np.load(on / "latent.npy"), np.load(on / "latent_encoder.npy")
    np.testing.assert_array_equal(z_enc, np.load(off / "latent.npy"))  # same encoder, same seed
    assert z.shape == z_enc.shape == (120, 2) and not np.allclose(z, z_enc)
    info = json.loads((on / "refine.json").read_text())
    anchors = np.asarray(info["anchors"])
    assert info["latent_npy"] == "refined" and info["variance_kept"] >= 0.1
    assert anchors.shape == (6, 2) and info["options"]["high_res_angstrom"] == 12.0
    # refined points are posterior means: inside the anchors' bounding box
    assert np.all(z >= anchors.min(0) - 1e-5) and np.all(z <= anchors.max(0) + 1e-5)
    assert not (off / "latent_encoder.npy").exists() and not (off / "refine.json").exists()
    np.testing.assert_array_equal(load_run(on).latent, z)
    ar = load_analysis_run(on)
    np.testing.assert_allclose(reference_latent_of(ar), reference_latent(z_enc))
    assert math.isfinite(float(np.sum(reference_latent_of(load_analysis_run(off)))))
    np.save(on / "latent_encoder.npy", z_enc[:-1])  # a latent_encoder.npy that does not go with latent.npy
    with pytest.raises(InputError, match="latent_encoder.npy.*differs from the run's latent.npy"):
        reference_latent_of(load_analysis_run(on))


def test_uninformative_refinement_keeps_the_encoder_points(shifted, tmp_path, capsys):
    """A decoder trained for one epoch on 120 particles hardly moves anything: the posterior means would all
    sit at the prior mean, so latent.npy keeps the encoder's points and says so."""
    star, gmm, _ = shifted
    Trainer(_tiny_config(star, gmm, {"anchors": 6, "high_res_angstrom": 12.0}), tmp_path / "run",
            progress=False).run()
    run = tmp_path / "run"
    info = json.loads((run / "refine.json").read_text())
    assert info["latent_npy"] == "encoder" and info["variance_kept"] < 0.1
    np.testing.assert_array_equal(np.load(run / "latent.npy"), np.load(run / "latent_encoder.npy"))
    assert "latent.npy holds the encoder's points" in capsys.readouterr().out


def test_refine_command_rerefines_a_run_with_other_settings(shifted, tmp_path, monkeypatch, capsys):
    """`gmmplat refine` on a run trained without refinement: latent.npy becomes the refined points (the
    encoder's go to latent_encoder.npy), and a second call with other anchors starts again from them."""
    import gmmplat.refine.latent as lr
    from gmmplat import cli

    star, gmm, _ = shifted
    Trainer(_tiny_config(star, gmm), tmp_path / "run", progress=False).run()
    run = tmp_path / "run"
    z_enc = np.load(run / "latent.npy")
    real = lr.refine_latent
    monkeypatch.setattr(lr, "refine_latent", lambda decode, dataset, z, **kw: real(_decode(GMM.load(gmm)), dataset,
                                                                                   z, **kw))
    capsys.readouterr()
    assert cli.main(["refine", "--run", str(run), "--anchors", "6", "--high-res", "12", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "6 anchors" in out and "latent.npy holds the refined points" in out
    np.testing.assert_array_equal(np.load(run / "latent_encoder.npy"), z_enc)
    first = np.load(run / "latent.npy")
    assert not np.allclose(first, z_enc)
    assert cli.main(["refine", "--run", str(run), "--anchors", "8", "--high-res", "12", "--no-progress"]) == 0
    np.testing.assert_array_equal(np.load(run / "latent_encoder.npy"), z_enc)  # refined from the encoder's again
    info = json.loads((run / "refine.json").read_text())
    assert info["n_anchors"] == 8 and info["latent_npy"] == "refined"
    assert not np.allclose(np.load(run / "latent.npy"), first)
    second = np.load(run / "latent.npy")
    assert cli.main(["refine", "--run", str(run), "--anchors", "8", "--high-res", "12", "--pose-samples", "3",
                     "--pose-spread-deg", "3", "--pose-spread-angstrom", "1", "--pose-anchors", "4",
                     "--no-progress"]) == 0
    options = json.loads((run / "refine.json").read_text())["options"]
    assert (options["pose_samples"], options["pose_spread_deg"], options["pose_anchors"]) == (3, 3.0, 4)
    assert not np.allclose(np.load(run / "latent.npy"), second)  # the poses about each particle's count
    assert cli.main(["refine", "--run", str(run), "--pose-samples", "3", "--no-progress"]) == 2  # no spread
    assert "pose spread" in capsys.readouterr().err


def test_pose_samples_average_the_likelihood_over_poses_about_the_stated_one(shifted):
    """The likelihood of each anchor is the mean over the stated pose and the seeded draws about it
    (recomputed here from the image model, the anchors and the noise of the stated pose); a spread too
    small to move a projection gives the stated pose's result."""
    import torch

    from gmmplat.physics.image_model import ImageModel
    from gmmplat.projectors import PROJECTORS
    from gmmplat.losses.base import RingSums
    from gmmplat.refine.latent import (log_likelihood, pose_perturbations, posterior, refinement_band,
                                       ring_terms)

    star, gmm, t = shifted
    data = ParticleDataset(star, cache_mb=0)
    dec = _decode(GMM.load(gmm))
    g = np.random.default_rng(1)
    z = np.stack([t + 0.5 * g.standard_normal(len(t)), 0.3 * g.standard_normal(len(t))], 1)
    kw = dict(n_anchors=6, high_res_angstrom=None, noise_particles=120)
    one = refine_latent(dec, data, z, **kw)
    three = refine_latent(dec, data, z, pose_samples=3, pose_spread_deg=4.0, pose_spread_angstrom=1.0, **kw)
    np.testing.assert_array_equal(three.noise_per_ring, one.noise_per_ring)  # the noise of the stated pose
    same = three.posterior.argmax(1) == one.posterior.argmax(1)  # the quality is the most probable anchor's
    np.testing.assert_array_equal(three.quality[same], one.quality[same])
    assert three.options["pose_samples"] == 3 and three.options["pose_spread_deg"] == 4.0

    R, d = pose_perturbations(3, 4.0, 1.0, 0, "cpu")
    torch.testing.assert_close(R[1], R[0].T)  # an antithetic pair
    torch.testing.assert_close(d[1], -d[0])
    band = refinement_band(data.box, data.pixel_size_angstrom, None)
    model, rings = ImageModel(band, PROJECTORS.build("separable", band)), RingSums(band)
    batch = data.get_batch(np.arange(len(data)))
    params = dec(torch.as_tensor(one.anchors, dtype=torch.float32))
    O = model.observe(batch)
    ll = np.zeros((len(data), 6, 3))
    for j, (Rj, dj) in enumerate([(torch.eye(3), torch.zeros(2)), (R[0], d[0]), (R[1], d[1])]):
        moved = replace(batch, rotations=Rj @ batch.rotations, shifts_angstrom=batch.shifts_angstrom + dj)
        for k in range(6):
            res = ring_terms(O, model.predict(params[k], moved), rings)[0].double().numpy()
            ll[:, k, j] = log_likelihood(res, one.noise_per_ring)
    top = ll.max(2, keepdims=True)
    marginal = (top + np.log(np.exp(ll - top).mean(2, keepdims=True)))[..., 0]
    np.testing.assert_allclose(three.posterior, posterior(marginal, one.prior), atol=2e-3)
    assert np.abs(three.posterior - one.posterior).max() > 0.05  # the poses matter at this spread
    # at each particle's 2 most probable anchors only; the others keep the stated pose's share, ℓ − log 3
    two = refine_latent(dec, data, z, pose_samples=3, pose_spread_deg=4.0, pose_spread_angstrom=1.0,
                        pose_anchors=2, **kw)
    stated = ll[:, :, 0]
    top = np.argsort(-(stated + np.log(one.prior)[None]), axis=1)[:, :2]
    expected = stated - math.log(3)
    rows = np.arange(len(data))[:, None]
    expected[rows, top] = marginal[rows, top]
    np.testing.assert_allclose(two.posterior, posterior(expected, one.prior), atol=2e-3)
    assert two.options["pose_anchors"] == 2

    tiny = refine_latent(dec, data, z, pose_samples=5, pose_spread_deg=1e-5, pose_spread_angstrom=1e-6, **kw)
    np.testing.assert_allclose(tiny.posterior, one.posterior, atol=1e-4)
    with pytest.raises(ConfigError, match="pose spread"):
        refine_latent(dec, data, z, pose_samples=3, **kw)
    with pytest.raises(ConfigError, match="pose_samples"):
        refine_latent(dec, data, z, pose_samples=0, **kw)
    with pytest.raises(ConfigError, match="pose_anchors"):
        refine_latent(dec, data, z, pose_samples=3, pose_spread_deg=1.0, pose_anchors=0, **kw)
