"""Nuisances of real data in the simulation (junk, B-factor, coloured noise, scale, pose errors) and the
oracle that knows them: each checked against a path the simulator does not use."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import multivariate_normal

from gmmplat.analysis.oracle import gaussian_log_likelihood, load_simulated_dataset, run_oracle
from gmmplat.errors import ConfigError
from gmmplat.io.stacks import StackReader
from gmmplat.io.star import read_particle_star
from gmmplat.physics.geometry import euler_to_matrix
from gmmplat.synthetic.images import project_atoms
from gmmplat.synthetic.motions import get_motion
from gmmplat.synthetic.nuisance import REALISTIC, Nuisances, colour_noise, noise_spectrum
from gmmplat.synthetic.simulate import simulate_dataset

TINY = dict(box=32, pixel_size_angstrom=4.0, images_per_stack=40, n_consensus=3, progress=False)


def _radial_power(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean |FFT|² per integer radius (numpy's full FFT, no package code): ``(radii, power)``."""
    M = images.shape[-1]
    P = (np.abs(np.fft.fft2(images)) ** 2).mean(0)
    k = np.fft.fftfreq(M) * M
    r = np.rint(np.hypot(k[:, None], k[None, :])).astype(int)
    radii = np.arange(M // 2 + 1)
    return radii, np.array([P[r == q].mean() for q in radii])


def test_noise_spectrum_keeps_the_variance_and_falls_to_the_stated_power():
    M, rho = 32, 0.25
    S = noise_spectrum(M, 2.0, rho)
    w = np.full(M // 2 + 1, 2.0)
    w[0] = w[-1] = 1.0
    assert math.isclose(float((S.numpy() * w).sum() / M**2), 1.0, rel_tol=1e-12)
    assert math.isclose(float(S[0, M // 2] / S[0, 0]), rho, rel_tol=1e-12)  # on the kx axis at Nyquist
    assert torch.equal(noise_spectrum(M, 2.0, 1.0), torch.ones(M, M // 2 + 1, dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    noise = colour_noise(torch.randn(4000, M, M, generator=g, dtype=torch.float64), S).numpy()
    assert abs(noise.var() - 1.0) < 0.01  # the SNR's noise variance per pixel is kept
    radii, power = _radial_power(noise)
    ratio = power[M // 2] / power[1]
    expected = rho ** ((M // 2 - 1) / (M // 2))  # S(r) / S(1 px)
    assert abs(ratio / expected - 1) < 0.05


def test_bad_nuisances_are_config_errors():
    for bad in (dict(junk_fraction=1.0), dict(junk_kinds=("dust",)), dict(bfactor_range_angstrom2=(50, 10)),
                dict(noise_power_at_nyquist=0.0), dict(scale_sigma=-1), dict(pose_error_deg=90)):
        with pytest.raises(ConfigError):
            Nuisances(**bad)
    assert Nuisances.from_dict(REALISTIC.to_dict()) == REALISTIC and REALISTIC.any and not Nuisances().any


@pytest.fixture(scope="module")
def realistic_clean_images(tmp_path_factory):
    """The realistic hinge without noise (every image is exactly its noise-free formation)."""
    out = tmp_path_factory.mktemp("nuisance") / "hinge_realistic"
    simulate_dataset("hinge", out, n_particles=80, snr=float("inf"), seed=3, nuisances=REALISTIC, **TINY)
    return out


def _envelope_ctf(tab, truth_b, M, apix):
    """RELION's CTF from the package (pinned elsewhere) times exp(−B s²/4) computed here in numpy."""
    from gmmplat.physics.ctf import CTFParams, ctf_rfft

    ctf = ctf_rfft(CTFParams.from_table(tab), M, apix).numpy().astype(np.float64)
    ky, kx = np.fft.fftfreq(M, d=apix), np.fft.rfftfreq(M, d=apix)
    s2 = ky[:, None] ** 2 + kx[None, :] ** 2
    return ctf * np.exp(-np.asarray(truth_b)[:, None, None] * s2[None] / 4)


def test_realistic_images_are_formed_at_the_true_pose_with_envelope_and_scale(realistic_clean_images):
    folder = realistic_clean_images
    star = read_particle_star(folder / "particles.star")
    truth = pd.read_csv(folder / "truth.csv", keep_default_na=False)
    images = StackReader(star)[np.arange(len(truth))].astype(np.float64)
    assert set(truth.columns) >= {"junk", "junk_kind", "bfactor_angstrom2", "scale", "rot_deg", "shift_x_angstrom"}
    assert (star.table["bfactor"] == 0).all()  # the envelope is simulated, not stated
    junk = truth["junk"].to_numpy().astype(bool)
    assert junk.sum() == round(0.12 * 80) and set(truth.loc[junk, "junk_kind"]) == {"empty", "fragment"}
    assert np.abs(images[(truth["junk_kind"] == "empty").to_numpy()]).max() == 0
    ok = np.flatnonzero(~junk)
    motion = get_motion("hinge")
    A = euler_to_matrix(*(truth[c].to_numpy()[ok] for c in ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    shifts = truth[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy()[ok]
    proj = project_atoms(motion.coordinates_batch(truth["t"].to_numpy()[ok]), motion.model.electrons, A, shifts,
                         32, 4.0, 3.0)
    ctf = _envelope_ctf(star.table.iloc[ok], truth["bfactor_angstrom2"].to_numpy()[ok], 32, 4.0)
    expected = np.fft.irfft2(np.fft.rfft2(proj) * ctf, s=(32, 32)) * truth["scale"].to_numpy()[ok, None, None]
    assert np.allclose(images[ok], expected, atol=1e-5 * np.abs(expected).max())
    # the STAR's poses are not the true ones: without the errors the images do not agree
    A_star = euler_to_matrix(*(star.table[c].to_numpy()[ok] for c in ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    wrong = project_atoms(motion.coordinates_batch(truth["t"].to_numpy()[ok]), motion.model.electrons, A_star,
                          star.table[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy()[ok], 32, 4.0, 3.0)
    wrong = np.fft.irfft2(np.fft.rfft2(wrong) * ctf, s=(32, 32)) * truth["scale"].to_numpy()[ok, None, None]
    assert not np.allclose(images[ok], wrong, atol=0.05 * np.abs(expected).max())
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["options"]["nuisances"] == REALISTIC.to_dict()


def test_pose_errors_have_the_stated_size(tmp_path):
    from dataclasses import replace

    nz = replace(Nuisances(), pose_error_deg=3.0, shift_error_angstrom=1.0)
    simulate_dataset("hinge", tmp_path / "d", n_particles=600, snr=float("inf"), seed=4, nuisances=nz,
                     images_per_stack=600, box=32, pixel_size_angstrom=4.0, n_consensus=2, progress=False)
    star = read_particle_star(tmp_path / "d" / "particles.star").table
    truth = pd.read_csv(tmp_path / "d" / "truth.csv")
    A_true = euler_to_matrix(*(truth[c].to_numpy() for c in ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    A_star = euler_to_matrix(*(star[c].to_numpy() for c in ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    cos = (np.trace(A_star @ np.swapaxes(A_true, 1, 2), axis1=1, axis2=2) - 1) / 2
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert 1.54 * 3.0 * 0.85 < np.median(angle) < 1.54 * 3.0 * 1.15  # Maxwell median: 1.538 σ
    d = np.hypot(*(star[c].to_numpy() - truth[c].to_numpy() for c in ("shift_x_angstrom", "shift_y_angstrom")))
    assert 1.177 * 0.85 < np.median(d) < 1.177 * 1.15  # Rayleigh median: 1.177 σ
    assert (truth["junk"] == 0).all() and (truth["scale"] == 1).all() and (truth["bfactor_angstrom2"] == 0).all()


def test_clean_truth_states_the_star_poses(tmp_path):
    simulate_dataset("hinge", tmp_path / "c", n_particles=20, seed=2, **TINY)
    star = read_particle_star(tmp_path / "c" / "particles.star").table
    truth = pd.read_csv(tmp_path / "c" / "truth.csv")
    for c in ("rot_deg", "tilt_deg", "psi_deg", "shift_x_angstrom", "shift_y_angstrom"):
        np.testing.assert_array_equal(truth[c].to_numpy(), star[c].to_numpy())


def test_coloured_log_likelihood_is_the_dense_gaussian_density():
    """The oracle's Fourier formula against scipy's multivariate normal with the filter's covariance."""
    M, sigma = 16, 0.7
    S = noise_spectrum(M, 3.0, 0.2)
    eye = torch.eye(M * M, dtype=torch.float64).reshape(M * M, M, M)
    H = colour_noise(eye, S).reshape(M * M, M * M).numpy().T  # column j: the filtered unit impulse j
    cov = sigma**2 * H @ H.T
    g = torch.Generator().manual_seed(1)
    clean = torch.randn(2, 3, M, M, generator=g, dtype=torch.float64)
    y = clean[:, 0] + sigma * colour_noise(torch.randn(2, M, M, generator=g, dtype=torch.float64), S)
    ll = gaussian_log_likelihood(y, clean, sigma, S).numpy()
    for b in range(2):
        for k in range(3):
            direct = multivariate_normal(clean[b, k].flatten().numpy(), cov, allow_singular=False).logpdf(
                y[b].flatten().numpy())
            assert math.isclose(ll[b, k], direct, rel_tol=1e-8, abs_tol=1e-6)
    white = gaussian_log_likelihood(y, clean, sigma, torch.ones_like(S)).numpy()
    np.testing.assert_allclose(white, gaussian_log_likelihood(y, clean, sigma).numpy(), rtol=1e-10)


def test_oracle_leaves_junk_out_and_uses_the_true_nuisances(tmp_path):
    simulate_dataset("hinge", tmp_path / "r", n_particles=100, snr=2.0, seed=5, nuisances=REALISTIC, **TINY)
    ds = load_simulated_dataset(tmp_path / "r")
    res = run_oracle(ds, n_particles=None)
    assert not ds.junk[res.rows].any() and len(res.rows) == 100 - ds.junk.sum()
    # at this SNR the oracle that knows the truth finds the frames; one told the STAR's poses does worse
    good = np.mean(res.map_frame == res.frame)
    assert good > 0.6 and np.all(np.abs(res.map_frame - res.frame) <= 1)  # t lies between the frames
    ds.truth = ds.truth.drop(columns=["rot_deg", "tilt_deg", "psi_deg", "shift_x_angstrom", "shift_y_angstrom"])
    assert np.mean(run_oracle(ds, n_particles=None).map_frame == res.frame) < good / 2


def test_junk_kinds_are_what_they_say():
    from gmmplat.synthetic.nuisance import junk_coordinates

    xyz = get_motion("bend").coordinates(0.3)
    empty, rows = junk_coordinates("empty", xyz, 0.3, 0.5, 0, 1)
    assert empty.shape == (0, 3) and len(rows) == 0
    frag, rows = junk_coordinates("fragment", xyz, 0.3, 0.5, 0, 1)
    assert len(rows) == round(0.3 * len(xyz)) and np.all(np.diff(rows) == 1)  # one contiguous run
    np.testing.assert_array_equal(frag, xyz[rows])
    other, rows = junk_coordinates("other", xyz, 0.3, 0.5, 0, 1)
    rg = np.sqrt(np.mean(np.sum((xyz - xyz.mean(0)) ** 2, 1)))
    assert len(other) == len(xyz) and np.linalg.norm(other, axis=1).max() <= rg + 1e-9
    again, _ = junk_coordinates("other", xyz, 0.3, 0.5, 0, 1)
    np.testing.assert_array_equal(other, again)  # seeded by the particle
    with pytest.raises(ConfigError):
        junk_coordinates("dust", xyz, 0.3, 0.5, 0, 1)


def test_refinement_noise_estimate_follows_a_coloured_spectrum():
    """noise_per_ring on residuals of coloured noise is M²σ²·S at each ring's radius (known spectrum)."""
    from gmmplat.losses.base import RingSums
    from gmmplat.physics.fourier import Band
    from gmmplat.refine.latent import noise_per_ring, ring_residuals

    M, apix, sigma, rho = 32, 2.0, 0.8, 0.25
    band = Band(M, apix)
    rings = RingSums(band)
    S = noise_spectrum(M, apix, rho)
    g = torch.Generator().manual_seed(3)
    noise = sigma * colour_noise(torch.randn(600, M, M, generator=g, dtype=torch.float64), S)
    signal = torch.randn(600, M, M, generator=g, dtype=torch.float64)
    O = band.images_to_band((signal + noise).float())
    P = band.images_to_band(signal.float())
    sums = ring_residuals(O, P, rings).double().numpy()  # the prediction is the signal: residual = noise
    est = noise_per_ring(np.stack([sums, sums + 1.0], 1), rings)
    r = rings.rings.numpy() / (M / 2)  # radius in units of Nyquist
    expected = M**2 * sigma**2 * float(S[0, 0]) * rho**r  # S(k) ∝ ρ^(|k|/k_Nyquist)
    np.testing.assert_allclose(est[2:] / expected[2:], 1.0, atol=0.1)  # rings of more than a few cells


def test_fitted_scale_recovers_known_scales(tmp_path):
    """Images multiplied by known factors: the refinement's fitted scale is each image's factor."""
    import mrcfile
    from test_train_fixtures import make_dataset, moved_params

    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.model.gmm import GMM
    from gmmplat.refine.latent import refine_latent

    star, gmm, t = make_dataset(tmp_path, n=40, snr=None, seed=2)
    factor = np.random.default_rng(1).uniform(0.5, 1.5, 40)
    g = np.random.default_rng(2)
    with mrcfile.open(tmp_path / "stack.mrcs", "r+") as m:
        clean = m.data.astype(np.float64)
        m.set_data((clean * factor[:, None, None] + g.normal(0, 0.2 * clean.std(), clean.shape)).astype(np.float32))
    neutral = GMM.load(gmm)
    r = refine_latent(lambda z: moved_params(neutral, z[:, 0].numpy()), ParticleDataset(star, cache_mb=0),
                      np.stack([t, 0 * t], 1), n_anchors=4, high_res_angstrom=None, noise_particles=40)
    np.testing.assert_allclose(r.fitted_scale, factor, rtol=0.1)
    assert np.median(np.abs(r.fitted_scale / factor - 1)) < 0.03


def test_simulate_cli_nuisance_options(tmp_path, capsys):
    from gmmplat import cli

    base = ["simulate", "hinge", "--out", str(tmp_path), "--n-particles", "20", "--box", "32", "--pixel-size", "4",
            "--quiet", "--snr", "inf"]
    assert cli.main(base + ["--realistic", "--junk-fraction", "0.25", "--junk-kinds", "fragment,other",
                            "--bfactor-range", "10,20", "--noise-power-at-nyquist", "0.5", "--scale-sigma", "0.3",
                            "--pose-error-deg", "2", "--shift-error-angstrom", "0.5"]) == 0
    folder = tmp_path / "hinge_realistic"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["options"]["nuisances"] == {
        "junk_fraction": 0.25, "junk_kinds": ["fragment", "other"], "bfactor_range_angstrom2": [10.0, 20.0],
        "noise_power_at_nyquist": 0.5, "scale_sigma": 0.3, "pose_error_deg": 2.0, "shift_error_angstrom": 0.5}
    truth = pd.read_csv(folder / "truth.csv", keep_default_na=False)
    assert truth["junk"].sum() == 5 and set(truth.loc[truth.junk == 1, "junk_kind"]) == {"fragment", "other"}
    assert truth["bfactor_angstrom2"].between(10, 20).all() and truth["scale"].std() > 0.1
    capsys.readouterr()
    assert cli.main(["simulate", "hinge", "--out", str(tmp_path), "--junk-kinds", "dust", "--quiet"]) == 2
    assert "junk kinds" in capsys.readouterr().err
    assert cli.main(["simulate", "hinge", "--out", str(tmp_path), "--bfactor-range", "40", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--bfactor-range" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "hinge").exists()


def test_pose_marginal_oracle(tmp_path):
    """Told only the stated poses: without pose errors it is the plain oracle to rounding; with them its
    posterior is flatter than the one told the true poses, and its draws are seeded."""
    from dataclasses import replace

    from gmmplat.analysis.oracle import has_pose_errors, stated_pose_samples

    simulate_dataset("hinge", tmp_path / "c", n_particles=24, snr=1.0, seed=6, **TINY)
    ds = load_simulated_dataset(tmp_path / "c")
    assert not has_pose_errors(ds)
    plain, marginal = run_oracle(ds, None), run_oracle(ds, None, pose_samples=3)
    np.testing.assert_allclose(marginal.log_likelihood, plain.log_likelihood, rtol=1e-9, atol=1e-6)

    nz = replace(Nuisances(), pose_error_deg=4.0, shift_error_angstrom=1.0)
    simulate_dataset("hinge", tmp_path / "p", n_particles=24, snr=1.0, seed=6, nuisances=nz, **TINY)
    ds = load_simulated_dataset(tmp_path / "p")
    assert has_pose_errors(ds)
    a = [A for A, _ in stated_pose_samples(ds, np.arange(5), 2, seed=0)]
    b = [A for A, _ in stated_pose_samples(ds, np.arange(5), 2, seed=0)]
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], a[1])

    def entropy(p):
        return float(np.mean(-(p * np.log(np.clip(p, 1e-300, 1))).sum(1)))

    told = run_oracle(ds, None)
    blind = run_oracle(ds, None, pose_samples=8)
    assert entropy(blind.posterior) > entropy(told.posterior)


def test_nuisance_reports(tmp_path):
    """junk_report counts what the junk rule leaves out per kind; bfactor_report compares fitted and true B
    (junk left out); pose_error_table: corrections that undo the simulated errors exactly leave none."""
    from scipy.spatial.transform import Rotation

    from gmmplat.analysis.nuisances import bfactor_report, junk_report, nuisance_summary, pose_error_table

    folder = tmp_path / "r"
    simulate_dataset("hinge", folder, n_particles=50, snr=float("inf"), seed=8, nuisances=REALISTIC, **TINY)
    truth = pd.read_csv(folder / "truth.csv", keep_default_na=False)
    star = read_particle_star(folder / "particles.star").table
    junk = truth["junk"].to_numpy() == 1
    run = tmp_path / "run"
    run.mkdir()
    scale = np.where(junk, 0.1, 1.0)
    np.save(run / "fit_scale.npy", scale.astype(np.float32))
    np.save(run / "quality.npy", (scale * 100).astype(np.float32))
    table, summary = junk_report(folder, run)
    assert summary["junk_left_out"] == junk.sum() == 6 and summary["particles_left_out"] == 0
    assert summary["auc_quality"] == summary["auc_scale"] == 1.0
    assert set(table.index) == {"particle", "empty", "fragment"}
    assert "junk" in nuisance_summary(folder).index
    true_b = truth["bfactor_angstrom2"].to_numpy()
    np.save(run / "fit_bfactor.npy", np.where(junk, np.nan, true_b - 30.0).astype(np.float32))
    report = bfactor_report(folder, run)
    assert report["particles_fitted"] == report["particles"] == 44 and report["spearman"] == pytest.approx(1.0)
    assert report["median_true_angstrom2"] - report["median_fitted_angstrom2"] == pytest.approx(30.0, abs=1e-3)

    A = {k: euler_to_matrix(*(t[c].to_numpy() for c in ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
         for k, t in (("true", truth), ("star", star))}
    undo = Rotation.from_matrix(A["true"] @ np.swapaxes(A["star"], 1, 2)).as_rotvec()  # true = R · stated
    shift = (truth[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy()
             - star[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy())
    np.save(run / "pose_correction.npy", np.concatenate([np.degrees(undo), shift], 1).astype(np.float32))
    errors = pose_error_table(folder, run)
    assert errors.loc["stated", "median rotation (°)"] > 2 and errors.loc["stated", "median origin (Å)"] > 0.5
    assert errors.loc["corrected", "median rotation (°)"] < 0.01 and errors.loc["corrected", "median origin (Å)"] < 1e-4
