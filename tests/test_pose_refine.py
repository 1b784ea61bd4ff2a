"""Local pose refinement (gmmplat.refine.poses): its rotation parametrisation (geometry.axis_angle_to_matrix)
against scipy, the corrections applied by the dataset, and stated poses a few degrees off brought back to
the truth."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from test_train_fixtures import make_dataset, moved_params

from gmmplat.io.dataset import ParticleDataset
from gmmplat.io.star import read_particle_star, write_particle_star
from gmmplat.model.gmm import GMM
from gmmplat.physics.geometry import axis_angle_to_matrix, euler_to_matrix, matrix_to_euler
from gmmplat.refine.latent import refine_latent, refinement_band
from gmmplat.refine.poses import PoseCorrections, refine_poses


def test_rotation_matrix_is_scipys_rotvec_and_smooth_at_zero():
    g = np.random.default_rng(0)
    w = np.concatenate([g.normal(0, 0.3, (6, 3)), np.zeros((1, 3)), [[1e-6, -2e-6, 0.5e-6]]])
    ours = axis_angle_to_matrix(torch.as_tensor(w)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(w).as_matrix(), atol=1e-12)
    x = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    (axis_angle_to_matrix(x) @ torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0  # d(Rv)/dω at 0 = −[v]×: not zero


def _angles_deg(A, B):
    cos = (np.trace(A @ np.swapaxes(B, 1, 2), axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.fixture(scope="module")
def misposed(tmp_path_factory):
    """48 particles at SNR 20 (box 32 at 2 Å/px); the STAR states each pose turned by ~6° and each origin moved by ~1.5 Å."""
    folder = tmp_path_factory.mktemp("poses")
    star, gmm, t = make_dataset(folder, n=48, box=32, apix=2.0, snr=20.0, seed=7, n_gaussians=48)
    true = read_particle_star(star).table
    A = euler_to_matrix(*(true[c].to_numpy() for c in ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    g = np.random.default_rng(3)
    err = Rotation.from_rotvec(np.radians(4.0) * g.normal(size=(48, 3))).as_matrix()
    euler = matrix_to_euler(torch.as_tensor(err @ A)).numpy()
    wrong = true.copy()
    wrong[["rot_deg", "tilt_deg", "psi_deg"]] = euler
    wrong[["shift_x_angstrom", "shift_y_angstrom"]] += g.normal(0, 1.2, (48, 2))
    bad = folder / "misposed.star"
    write_particle_star(bad, wrong)
    return star, bad, gmm, t, A


def test_dataset_applies_corrections(misposed):
    star, bad, gmm, t, A = misposed
    data = ParticleDataset(bad, cache_mb=0)
    before = data.get_batch(np.arange(4))
    w = np.array([[0.1, 0.0, 0.0], [0.0, -0.2, 0.0], [0.0, 0.0, 0.3], [0.0, 0.0, 0.0]])
    corr = PoseCorrections.zeros(48)
    corr.rotvec_rad[:4], corr.shift_angstrom[:4] = w, [1.0, -2.0]
    data.set_pose_corrections(corr)
    after = data.get_batch(np.arange(4))
    expected = Rotation.from_rotvec(w).as_matrix() @ before.rotations.double().numpy()
    np.testing.assert_allclose(after.rotations.double().numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(after.shifts_angstrom - before.shifts_angstrom, [[1.0, -2.0]] * 4, atol=1e-6)
    with pytest.raises(ValueError):
        data.set_pose_corrections(PoseCorrections.zeros(3))
    data.set_pose_corrections(None)
    assert torch.equal(data.get_batch(np.arange(4)).rotations, before.rotations)


def _refine_under_true_motion(star, gmm, t, steps):
    """Poses of ``star``'s particles refined under the true motion at the true t: (dataset, corrections)."""
    neutral = GMM.load(gmm)

    def decode(z):
        return moved_params(neutral, z[:, 0].numpy())

    data = ParticleDataset(star, cache_mb=0)
    z = np.stack([t, np.zeros_like(t)], 1)
    refined = refine_latent(decode, data, z, n_anchors=4, high_res_angstrom=None, noise_particles=48)
    band = refinement_band(data.box, data.pixel_size_angstrom, None)
    return data, refine_poses(decode, data, z, refined.noise_per_ring, band, steps=steps)


def test_refinement_brings_misstated_poses_back(misposed):
    star, bad, gmm, t, A = misposed
    data, poses = _refine_under_true_motion(bad, gmm, t, steps=60)
    data.set_pose_corrections(poses)
    fixed = data.get_batch(np.arange(48))
    stated = ParticleDataset(bad, cache_mb=0).get_batch(np.arange(48))
    err_before = _angles_deg(stated.rotations.double().numpy(), A)
    err_after = _angles_deg(fixed.rotations.double().numpy(), A)
    assert np.median(err_after) < np.median(err_before) / 3, (np.median(err_before), np.median(err_after))
    truth = ParticleDataset(star, cache_mb=0).get_batch(np.arange(48)).shifts_angstrom
    d_before = (stated.shifts_angstrom - truth).norm(dim=1).median()
    d_after = (fixed.shifts_angstrom - truth).norm(dim=1).median()
    assert d_after < d_before / 2, (float(d_before), float(d_after))
    s = poses.summary()
    assert 3 < s["median_rotation_deg"] < 12 and poses.as_array().shape == (48, 5)
    # the errors' spread as estimated: of the order of the ~6° / 1.5 Å the STAR was moved by
    assert 2 < s["spread_deg"] < 12 and 0.4 < s["spread_angstrom"] < 4, s


def test_shrinkage_estimates_the_error_spread_and_keeps_exact_poses_exact():
    from gmmplat.refine.poses import shrink_estimates

    g = np.random.default_rng(2)
    n = 4000
    L = g.normal(0, 1, (n, 5, 5))
    H = L @ np.swapaxes(L, 1, 2) + 2 * np.eye(5)  # estimation precision, noise sd about 0.3–0.7
    noise = np.stack([g.multivariate_normal(np.zeros(5), np.linalg.inv(h)) for h in H])
    for sd in (0.0, 1.0):
        e = sd * g.normal(0, 1, (n, 5))
        x = e + noise
        post, cov, errors = shrink_estimates(x, H, return_covariance=True)
        np.testing.assert_array_equal(post, shrink_estimates(x, H))
        spread2 = np.diagonal(cov, axis1=1, axis2=2).mean()  # the remaining uncertainty the means claim
        if sd == 0:
            assert np.abs(post).mean() < 0.1 * np.abs(x).mean()  # exact poses stay nearly exact
            assert spread2 < 0.05 * (x**2).mean()
        else:
            mse_raw, mse_post = ((x - e) ** 2).mean(), ((post - e) ** 2).mean()
            assert mse_post < 0.8 * mse_raw and np.corrcoef(post[:, 0], e[:, 0])[0, 1] > 0.8
            assert spread2 == pytest.approx(mse_post, rel=0.15)  # calibrated: the actual remaining error
            np.testing.assert_allclose(np.diagonal(errors), 1.0, rtol=0.15)  # the errors' spread, sd 1


def test_exact_poses_are_left_nearly_alone(misposed):
    star, bad, gmm, t, A = misposed
    _, poses = _refine_under_true_motion(star, gmm, t, steps=30)
    assert poses.summary()["median_rotation_deg"] < 1.0 and poses.summary()["median_shift_angstrom"] < 0.3
    # nothing left to average over: the latent refinement's pose samples fall back to the pose itself
    from gmmplat.refine.latent import effective_pose_samples, refinement_band

    spread = poses.spread_deg_angstrom()
    band = refinement_band(32, 2.0, 10.0)
    assert effective_pose_samples(9, *spread, band) == 1, spread
    assert effective_pose_samples(9, 3.0, 1.0, band) == 9  # the realistic datasets' errors


def test_noise_on_band_at_the_true_poses_is_white_and_follows_the_corrections(misposed):
    """At the true poses and motion the residual is the simulated white noise: flat over the rings. The
    misstated STAR with the exact inverse corrections applied by the dataset gives the same estimate as
    the true STAR; without them the low rings carry the pose error too."""
    from gmmplat.physics.fourier import Band
    from gmmplat.refine.poses import noise_on_band

    star, bad, gmm, t, A = misposed
    neutral = GMM.load(gmm)

    def decode(z):
        return moved_params(neutral, z[:, 0].numpy())

    g = np.random.default_rng(3)  # the fixture's draws, in its order
    rotvec = np.radians(4.0) * g.normal(size=(48, 3))
    shift = g.normal(0, 1.2, (48, 2))
    undo = PoseCorrections(Rotation.from_rotvec(rotvec).inv().as_rotvec(), -shift)
    z = np.stack([t, np.zeros_like(t)], 1)
    band = Band(32, 2.0, None)
    true = noise_on_band(decode, ParticleDataset(star, cache_mb=0), z, band)
    misposed_data = ParticleDataset(bad, cache_mb=0)
    wrong = noise_on_band(decode, misposed_data, z, band)
    misposed_data.set_pose_corrections(undo)  # the estimate sees the poses the dataset gives
    undone = noise_on_band(decode, misposed_data, z, band)
    np.testing.assert_allclose(undone, true, rtol=1e-3)
    assert true.max() / true.min() < 2.0  # white
    assert wrong[:4].mean() > 2 * true[:4].mean()  # the pose error in the low rings
