"""Latent analysis: PCA, trajectories over the 1st–99th percentile, k-means, neighbours, plots."""
from __future__ import annotations

import numpy as np
import pytest

from gmmplat.analysis.latent import (
    fit_pca, flatten_latent, kmeans_states, nearest_rows, pc_trajectories,
)
from gmmplat.errors import ConfigError, InputError


@pytest.fixture
def latent():
    """Anisotropic Gaussian cloud in 4D along known, rotated axes (std 5, 2, 1, 0.1)."""
    g = np.random.default_rng(0)
    basis, _ = np.linalg.qr(g.normal(size=(4, 4)))
    scores = g.normal(size=(2000, 4)) * np.array([5.0, 2.0, 1.0, 0.1])
    return scores @ basis.T + np.array([1.0, -2.0, 0.5, 3.0]), basis


def test_pca_recovers_axes(latent):
    z, basis = latent
    pca = fit_pca(z, 3)
    assert pca.components.shape == (3, 4)
    for i in range(3):
        assert abs(abs(pca.components[i] @ basis[:, i]) - 1) < 1e-2
    assert np.all(np.diff(pca.explained_variance) < 0)
    np.testing.assert_allclose(pca.transform(z), pca.scores, atol=1e-9)


def test_trajectories_span_1st_to_99th_percentile(latent):
    z, _ = latent
    pca = fit_pca(z)
    traj = pc_trajectories(pca, n_pcs=3, n_frames=7)
    assert traj.z.shape == (3, 7, 4)
    for i in range(3):
        s = pca.scores[:, i]
        lo, hi = np.percentile(s, [1, 99])
        frame_scores = pca.transform(traj.z[i])
        # the frames' own PC score runs from the 1st to the 99th percentile, evenly
        np.testing.assert_allclose(frame_scores[:, i], np.linspace(lo, hi, 7), atol=1e-9)
        # 98 % of the particles lie within the span
        assert abs(np.mean((s >= lo) & (s <= hi)) - 0.98) < 0.005
        # every other PC score is zero (the trajectory passes through the mean)
        others = np.delete(frame_scores, i, axis=1)
        np.testing.assert_allclose(others, 0, atol=1e-9)


def test_too_many_pcs_is_one_line_error(latent):
    z, _ = latent
    with pytest.raises(ConfigError, match="asked for 5 principal components but the latent space has only 4") as e:
        pc_trajectories(fit_pca(z), n_pcs=5)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="only 4"):
        fit_pca(z, 6)


def test_symmetry_expanded_latent_repeats_values():
    z = np.arange(24, dtype=float).reshape(3, 4, 2)
    rows, values = flatten_latent(z, np.array([10, 20, 30]))
    assert rows.shape == (12, 2)
    np.testing.assert_array_equal(values, np.repeat([10, 20, 30], 4))
    np.testing.assert_array_equal(rows[5], z[1, 1])
    with pytest.raises(InputError, match="shape"):
        flatten_latent(np.zeros(5))
    with pytest.raises(InputError, match="NaN"):
        flatten_latent(np.array([[np.nan, 1.0]]))


def test_kmeans_and_nearest_rows():
    g = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    z = np.concatenate([c + g.normal(0, 0.5, (100, 2)) for c in centres])
    found, labels = kmeans_states(z, 3, seed=0)
    order = [int(np.argmin(np.linalg.norm(found - c, axis=1))) for c in centres]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(found[order], centres, atol=0.3)
    assert len(set(labels[:100])) == 1
    idx = nearest_rows(z, [10.0, 0.0], 50)
    assert np.all((idx >= 100) & (idx < 200))
    d = np.linalg.norm(z[idx] - [10.0, 0.0], axis=1)
    assert np.all(np.diff(d) >= 0)


def test_plots_write_png(tmp_path, latent):
    from gmmplat.analysis.plots import latent_scatter_png, pc_histograms_png

    z, _ = latent
    pca = fit_pca(z, 2)
    latent_scatter_png(tmp_path / "s.png", pca.scores, values=z[:, 0], value_label="t")
    pc_histograms_png(tmp_path / "h.png", pca.scores, pc_trajectories(pca, 2, 5).scores)
    for name in ("s.png", "h.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
