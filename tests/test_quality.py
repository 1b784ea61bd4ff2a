"""Per-particle fit quality and the junk rule (gmmplat.refine.latent.fit_quality / junk_mask,
gmmplat.analysis.quality) and ``gmmplat select --quality-above / --exclude-junk``."""
from __future__ import annotations

import shutil

import mrcfile
import numpy as np
import pytest
from test_analysis_cli import N_PARTICLES, run_dir  # noqa: F401  (run_dir: module fixture)
from test_train_fixtures import make_dataset, moved_params

from gmmplat import cli
from gmmplat.errors import ConfigError
from gmmplat.io.dataset import ParticleDataset
from gmmplat.model.gmm import GMM
from gmmplat.refine.latent import fit_quality, junk_mask, refine_latent


def test_fit_quality_is_the_best_scales_likelihood_gain():
    """q = max over s ≥ 0 of [log p(y | s·P) − log p(y | 0)], found here by a dense search over s."""
    g = np.random.default_rng(0)
    R = 7
    noise = g.uniform(0.5, 2.0, R)
    power = g.uniform(1.0, 3.0, (5, R))
    cross = g.normal(0.0, 1.0, (5, R)) + np.array([3, 1, 0, -1, -3])[:, None] * power / 3
    q, s = fit_quality(power, cross, noise)
    grid = np.linspace(0, 5, 200001)
    # log p(y | sP) − log p(y | 0) = Σ_r (2 s C_r − s² A_r) / (2σ²_r) ring by ring (D_r cancels)
    gain = ((2 * grid[None, :, None] * cross[:, None] - grid[None, :, None] ** 2 * power[:, None])
            / (2 * noise)).sum(-1)
    np.testing.assert_allclose(q, gain.max(1), rtol=1e-6, atol=1e-9)
    best = grid[gain.argmax(1)]
    np.testing.assert_allclose(np.where(s > 0, s, 0), best, atol=1e-4)
    assert q[-1] == 0 and s[-1] < 0  # anticorrelated: no gain at any s ≥ 0


def test_junk_mask_is_a_share_of_the_median():
    scale = np.array([1.0, 1.1, 0.9, 0.0, 0.3, 1.2, np.nan, 0.55])
    junk, threshold = junk_mask(scale, 0.5)
    assert threshold == pytest.approx(0.5 * np.median(scale[np.isfinite(scale)]))
    np.testing.assert_array_equal(junk, [False, False, False, True, True, False, True, False])
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError):
            junk_mask(scale, bad)


@pytest.fixture(scope="module")
def with_junk(tmp_path_factory):
    """48 particles, 8 of them noise only and 8 at 0.25 of the signal (a small fragment's worth)."""
    folder = tmp_path_factory.mktemp("quality")
    star, gmm, t = make_dataset(folder, n=48, snr=None, seed=5)
    g = np.random.default_rng(1)
    with mrcfile.open(folder / "stack.mrcs", "r+") as m:
        clean = m.data.astype(np.float64)
        sd = clean.std() / np.sqrt(0.5)
        factor = np.ones(48)
        factor[:8], factor[8:16] = 0.0, 0.25
        m.set_data((clean * factor[:, None, None] + g.normal(0, sd, clean.shape)).astype(np.float32))
    return star, gmm, t


def test_refinement_quality_ranks_junk_low_and_the_rule_finds_it(with_junk):
    star, gmm, t = with_junk
    neutral = GMM.load(gmm)

    def decode(z):
        return moved_params(neutral, z[:, 0].numpy())

    data = ParticleDataset(star, cache_mb=0)
    z = np.stack([t, np.zeros_like(t)], 1) + 0.05
    r = refine_latent(decode, data, z, n_anchors=6, high_res_angstrom=None, noise_particles=48)
    q, s = r.quality, r.fitted_scale
    assert q[:8].max() < q[16:].min() and q[8:16].max() < q[16:].min()
    assert np.median(s[16:]) == pytest.approx(1.0, abs=0.15) and np.abs(s[:8]).max() < 0.3
    junk, _ = junk_mask(s, 0.5)
    assert junk[:16].all() and not junk[16:].any()
    assert {"quality_median", "fitted_scale_median"} <= set(r.summary())
    # anchors from the particles alone: the same anchors as from a latent without the junk rows
    keep = np.arange(48) >= 16
    masked = refine_latent(decode, data, z, n_anchors=6, high_res_angstrom=None, noise_particles=48,
                           anchor_mask=keep)
    from gmmplat.refine.latent import anchor_points

    np.testing.assert_allclose(masked.anchors, anchor_points(z[keep], 6)[0])


def _gm(argv, capsys):
    code = cli.main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


@pytest.fixture
def scored_run(run_dir, tmp_path):  # noqa: F811
    """A copy of the analysis tests' run with a hand-made quality.npy and fit_scale.npy."""
    src = tmp_path
    run = tmp_path / "run"
    shutil.copytree(run_dir / "run", run)
    q = np.linspace(1.0, 100.0, N_PARTICLES)
    scale = np.ones(N_PARTICLES)
    scale[:10] = 0.1
    np.save(run / "quality.npy", q.astype(np.float32))
    np.save(run / "fit_scale.npy", scale.astype(np.float32))
    return src, run, q, scale


def _rows(star) -> np.ndarray:
    from gmmplat.io.star import read_particle_star

    return read_particle_star(star).table["image_index"].to_numpy()


def test_select_quality_above_and_exclude_junk(scored_run, capsys):
    src, run, q, scale = scored_run
    out = src / "good.star"
    code, printed, err = _gm(["select", "--run", run, "--quality-above", 50, "--out", out], capsys)
    assert code == 0, err
    kept = np.flatnonzero(q > 50)
    assert f"{kept.size} of {len(q)} particles have a quality above 50" in printed
    np.testing.assert_array_equal(_rows(out), kept)  # the stack holds particle i at image i

    out2 = src / "nojunk.star"
    code, printed, err = _gm(["select", "--run", run, "--exclude-junk", "--out", out2], capsys)
    assert code == 0, err
    assert "10 of" in printed and "left out as junk" in printed
    np.testing.assert_array_equal(_rows(out2), np.arange(10, len(q)))

    out3 = src / "both.star"
    code, printed, err = _gm(["select", "--run", run, "--exclude-junk", "--quality-above", 50, "--pc", 1,
                              "--range", "-100,100", "--out", out3], capsys)
    assert code == 0, err
    assert len(_rows(out3)) == np.sum((q > 50) & (scale >= 0.5))


def test_select_quality_errors(scored_run, capsys):
    src, run, q, scale = scored_run
    code, _, err = _gm(["select", "--run", run, "--out", src / "x.star"], capsys)
    assert code == 2 and "give a selection" in err and not (src / "x.star").exists()
    code, _, err = _gm(["select", "--run", run, "--quality-above", "nan", "--out", src / "x.star"], capsys)
    assert code == 2 and "finite" in err
    (run / "quality.npy").unlink()
    code, _, err = _gm(["select", "--run", run, "--quality-above", 3, "--out", src / "x.star"], capsys)
    assert code == 2 and "quality.npy" in err and "latent refinement" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1 and not (src / "x.star").exists()
    np.save(run / "quality.npy", np.zeros(3, np.float32))
    code, _, err = _gm(["select", "--run", run, "--quality-above", 3, "--out", src / "x.star"], capsys)
    assert code == 2 and "has 3 values" in err
