"""``gmmplat.analysis.analyze_run``: the package call behind ``gmmplat analyze`` (and notebook 06)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_analysis_cli import APIX, BOX, CENTRE, N_PARTICLES, run_dir  # noqa: F401  (module fixture)

from gmmplat.analysis import AnalysisResult, analyze_run
from gmmplat.analysis.runs import load_analysis_run
from gmmplat.errors import ConfigError, InputError
from gmmplat.io.mrc import read_map


def test_analyze_run_returns_what_it_wrote(run_dir, tmp_path):  # noqa: F811
    ar = load_analysis_run(run_dir / "run")
    out = tmp_path / "analysis"
    res = analyze_run(ar, out, pcs=1, frames=3, model=run_dir / "neutral_model.pdb", truth=run_dir / "truth.csv",
                      truth_frames=run_dir / "truth_frames.pdb", states=2)
    assert isinstance(res, AnalysisResult) and res.out == out
    assert res.files == sorted(p for p in out.rglob("*") if p.is_file())
    assert [p.name for p in tmp_path.iterdir()] == ["analysis"]  # the staging folder is gone
    assert {"latent_pca", "pc_histograms", "displacement_pc1", "per_residue_pc1",
            "rigid_pc1_moving_domain"} <= set(res.figures)
    assert all(p.suffix == ".png" and p.is_file() for p in res.figures.values())
    assert res.trajectories.z.shape == (1, 3, 2)
    np.testing.assert_allclose(np.load(out / "trajectories.npy"), res.trajectories.z)
    assert res.pca.explained_variance_ratio[0] > 0.5  # z0 = t is uniform on [-1, 1], z1 has σ 0.3
    assert res.states[0].shape == (2, 2) and res.states[1].shape == (N_PARTICLES,)
    assert res.scores["spearman_abs"] > 0.99 and res.scores["mean_frame_rmsd_angstrom"] < 0.5
    assert json.loads((out / "scores.json").read_text())["spearman_abs"] == res.scores["spearman_abs"]
    assert "1 trajectories x 3 frames" in res.summary
    page = res._repr_html_()
    assert page.count("<img") == len(res.figures) and "latent_pca" in page
    with pytest.raises(ConfigError, match="latent goes with a run folder"):
        analyze_run(ar, tmp_path / "other", latent=run_dir / "run" / "latent.npy")


def test_analyze_run_default_folder_and_overwrite(run_dir):  # noqa: F811
    res = analyze_run(run_dir / "run", pcs=1, frames=2)
    assert res.out == run_dir / "run" / "analysis" and (res.out / "chimerax.cxc").is_file()
    assert "scores.json" not in {p.name for p in res.files}  # no truth, no scores
    with pytest.raises(InputError, match="--overwrite"):
        analyze_run(run_dir / "run", pcs=1, frames=2)
    again = analyze_run(run_dir / "run", pcs=2, frames=2, overwrite=True)
    assert (again.out / "maps" / "pc2_frame01.mrc").is_file()


def test_analyze_run_reconstructs_from_the_particles(run_dir, tmp_path):  # noqa: F811
    from gmmplat.io.particles import read_particles
    from gmmplat.io.star import write_particle_star
    from gmmplat.synthetic.images import write_stack

    images = np.random.default_rng(0).normal(size=(N_PARTICLES, BOX, BOX)).astype(np.float32)
    write_stack(run_dir / "stack.mrcs", images, APIX)
    res = analyze_run(run_dir / "run", tmp_path / "a", pcs=1, frames=2, reconstruct=20)
    recon = [read_map(tmp_path / "a" / "recon" / f"pc1_frame{j:02d}.mrc") for j in range(2)]
    for m in recon:
        assert m.data.shape == (BOX,) * 3 and np.abs(m.data).max() > 0
        np.testing.assert_allclose(m.origin_angstrom, CENTRE - BOX // 2 * APIX)
    assert not np.allclose(recon[0].data, recon[1].data)  # different particles near each end of PC1
    assert res.out == tmp_path / "a"

    table = read_particles(run_dir / "particles.star").table.iloc[:-1]
    write_particle_star(tmp_path / "short.star", table)
    with pytest.raises(InputError, match=r"short.star: has 149 particles but the latent has 150 rows"):
        analyze_run(run_dir / "run", tmp_path / "b", pcs=1, frames=2, reconstruct=20,
                    particles=read_particles(tmp_path / "short.star"))
    assert not (tmp_path / "b").exists()


def test_analysis_json_records_options_seed_and_versions(run_dir, tmp_path):  # noqa: F811
    result = analyze_run(run_dir / "run", tmp_path / "a", pcs=1, frames=3, seed=7)
    record = json.loads((result.out / "analysis.json").read_text())
    assert record["options"]["seed"] == 7 and record["options"]["frames"] == 3 and record["options"]["pcs"] == 1
    assert record["environment"]["seed"] == 7 and record["environment"]["torch"] and record["environment"]["gmmplat"]
    assert record["run"].endswith("run")
