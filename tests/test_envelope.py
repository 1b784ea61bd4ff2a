"""The per-particle B-factor fit (gmmplat.refine.envelope): exact on noise-free ring sums, and the known
B-factors of images given their envelope by numpy's FFT, a path the package does not use."""
from __future__ import annotations

import numpy as np
import pytest

from gmmplat.refine.envelope import fit_bfactor


def test_noise_free_ring_sums_give_back_the_b_factor_and_scale():
    """``C_r = s e_r(B) A_r``: the fit returns B (between grid points too) and s; no positive fit gives NaN."""
    g = np.random.default_rng(0)
    freq = np.linspace(0.0, 0.25, 20)
    truth_b = np.array([-60.0, 0.0, 37.3, 121.0, 333.3])
    truth_s = np.array([0.7, 1.0, 1.3, 0.4, 2.0])
    power = g.uniform(0.5, 2.0, (len(truth_b), 20))
    noise = g.uniform(0.5, 1.5, 20)
    cross = truth_s[:, None] * np.exp(-truth_b[:, None] * freq[None] ** 2 / 4) * power
    b, s = fit_bfactor(power, cross, noise, freq**2)
    np.testing.assert_allclose(b, truth_b, atol=0.5)
    np.testing.assert_allclose(s, truth_s, rtol=2e-3)
    b, s = fit_bfactor(power[:2], -cross[:2], noise, freq**2)  # anti-correlated: nothing fits
    assert np.isnan(b).all() and np.isnan(s).all()
    with pytest.raises(ValueError, match="disagree"):
        fit_bfactor(power, cross, noise, freq[:-1] ** 2)


def test_refinement_recovers_known_b_factors(tmp_path):
    """Images given known envelopes ``exp(−B|k|²/4)`` with numpy's FFT, then noise: the latent
    refinement's fitted B is each image's B, and the run writes it as ``fit_bfactor.npy``."""
    import mrcfile
    from test_train_fixtures import make_dataset, moved_params

    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.model.gmm import GMM
    from gmmplat.refine.latent import refine_latent
    from gmmplat.train.refine_run import save_quality

    n, apix = 60, 4.0
    star, gmm, t = make_dataset(tmp_path, n=n, apix=apix, snr=None, seed=3)
    truth_b = np.random.default_rng(1).uniform(0.0, 200.0, n)
    g = np.random.default_rng(2)
    with mrcfile.open(tmp_path / "stack.mrcs", "r+") as m:
        clean = m.data.astype(np.float64)
        M = clean.shape[-1]
        k = np.fft.fftfreq(M, d=apix)
        k2 = k[:, None] ** 2 + k[None, :] ** 2
        blurred = np.real(np.fft.ifft2(np.fft.fft2(clean) * np.exp(-truth_b[:, None, None] * k2[None] / 4)))
        m.set_data((blurred + g.normal(0, 0.02 * clean.std(), clean.shape)).astype(np.float32))
    neutral = GMM.load(gmm)
    dataset = ParticleDataset(star, cache_mb=0)
    # an anchor per particle: each image's own state is among the predictions, so B alone differs
    r = refine_latent(lambda z: moved_params(neutral, z[:, 0].numpy()), dataset, np.stack([t, 0 * t], 1),
                      n_anchors=n, high_res_angstrom=None, noise_particles=n)
    error = r.fitted_bfactor - truth_b
    assert np.median(np.abs(error)) < 8.0 and abs(np.median(error)) < 3.0
    assert np.corrcoef(r.fitted_bfactor, truth_b)[0, 1] > 0.97
    save_quality(tmp_path, dataset, r)
    from gmmplat.analysis.quality import load_fit_bfactor

    np.testing.assert_allclose(load_fit_bfactor(tmp_path, n), r.fitted_bfactor, rtol=1e-6)


def test_noisy_fit_is_the_best_of_a_dense_search():
    """With noise, B̂ maximises the likelihood gain over B and s ≥ 0, as a dense search finds it."""
    g = np.random.default_rng(4)
    freq2 = np.linspace(0.0, 0.25, 16) ** 2
    power = g.uniform(0.5, 2.0, (6, 16))
    noise = g.uniform(0.5, 1.5, 16)
    cross = np.exp(-80.0 * freq2 / 4) * power + g.normal(0, 0.3, (6, 16))
    b, s = fit_bfactor(power, cross, noise, freq2)
    dense = np.linspace(-200, 600, 80001)
    env = np.exp(-dense[:, None] * freq2[None] / 4)
    a = (env**2 * (power / (2 * noise))[:, None]).sum(-1)
    c = (env * (cross / (2 * noise))[:, None]).sum(-1)
    np.testing.assert_allclose(b, dense[np.where(c > 0, c * c / a, 0).argmax(1)], atol=1.0)


def test_missing_or_bad_bfactor_file_is_a_one_line_error(tmp_path):
    from gmmplat.analysis.quality import load_fit_bfactor
    from gmmplat.errors import InputError

    with pytest.raises(InputError, match="fit_bfactor.npy.*no fitted B-factor"):
        load_fit_bfactor(tmp_path)
    np.save(tmp_path / "fit_bfactor.npy", np.zeros(3, np.float32))
    with pytest.raises(InputError, match="has 3 values but"):
        load_fit_bfactor(tmp_path, 4)
