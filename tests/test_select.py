"""``gmmplat select``: particle subsets from the latent space, written back as STAR or .cs.

Uses the analysis test run (tests/test_analysis_cli.py): 150 simulated particles whose
latent is (truth t, unrelated noise), so a k-means state must hold a narrow range of t.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import starfile
from test_analysis_cli import N_PARTICLES, run_dir  # noqa: F401  (module fixture)

from gmmplat import cli
from gmmplat.analysis.latent import fit_pca
from gmmplat.analysis.select import particles_from_rows
from gmmplat.errors import ConfigError
from gmmplat.io.cryosparc import load_cs
from gmmplat.io.star import read_particle_star


def gm(argv, capsys):
    code = cli.main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


@pytest.fixture(scope="module")
def states(run_dir):  # noqa: F811
    code = cli.main(["analyze", "--run", str(run_dir / "run"), "--pcs", "1", "--frames", "2", "--states", "4"])
    assert code == 0
    return np.load(run_dir / "run" / "analysis" / "kmeans.npz")["labels"]


def test_select_state_star(run_dir, states, tmp_path, capsys):  # noqa: F811
    t = pd.read_csv(run_dir / "truth.csv")["t"].to_numpy()
    state = int(states[np.argmax(t)])
    out = run_dir / "state.star"  # beside the original: same relative image paths
    code, printed, err = gm(["select", "--run", run_dir / "run", "--state", state, "--out", out], capsys)
    assert code == 0, err
    chosen = np.flatnonzero(states == state)
    assert f"state {state}: {chosen.size} of {N_PARTICLES} particles" in printed
    q1, q3 = np.percentile(t[chosen], [25, 75])
    assert q3 - q1 < (t.max() - t.min()) / 3, (q1, q3)
    assert 0 < chosen.size < N_PARTICLES

    original = starfile.read(run_dir / "particles.star", always_dict=True)
    subset = starfile.read(out, always_dict=True)
    pd.testing.assert_frame_equal(subset["optics"], original["optics"])
    pd.testing.assert_frame_equal(subset["particles"].reset_index(drop=True),
                                  original["particles"].iloc[chosen].reset_index(drop=True))
    assert len(read_particle_star(out).table) == chosen.size


def test_select_cs_keeps_uid_and_fields(run_dir, states, tmp_path, capsys):  # noqa: F811
    table = read_particle_star(run_dir / "particles.star").table
    rec = np.zeros(N_PARTICLES, dtype=[("uid", np.uint64), ("blob/path", "S32"), ("blob/idx", np.uint32),
                                       ("blob/psize_A", np.float32), ("ctf/df1_A", np.float32),
                                       ("custom/score", np.float32, (2,))])
    rec["uid"] = np.arange(N_PARTICLES, dtype=np.uint64) * 1000003 + 17
    rec["blob/path"] = b"stack.mrcs"
    rec["blob/idx"] = np.arange(N_PARTICLES)
    rec["blob/psize_A"] = table["pixel_size_angstrom"].to_numpy()
    rec["ctf/df1_A"] = table["defocus_u_angstrom"].to_numpy()
    rec["custom/score"] = np.random.default_rng(0).normal(size=(N_PARTICLES, 2))
    with open(tmp_path / "particles.cs", "wb") as fh:
        np.save(fh, rec)
    code, printed, err = gm(["select", "--run", run_dir / "run", "--cs", tmp_path / "particles.cs",
                             "--pc", "1", "--range", "0,10", "--out", tmp_path / "sub.cs"], capsys)
    assert code == 0, err
    sub = load_cs(tmp_path / "sub.cs")
    scores = fit_pca(np.load(run_dir / "run" / "latent.npy")).scores[:, 0]
    chosen = np.flatnonzero(scores >= 0)
    assert sub.dtype == rec.dtype and 0 < len(sub) < N_PARTICLES
    np.testing.assert_array_equal(sub, rec[chosen])
    # the same .cs as a RELION STAR subset
    code, printed, err = gm(["select", "--run", run_dir / "run", "--cs", tmp_path / "particles.cs",
                             "--indices", _indices(tmp_path, [3, 1, 4]), "--out", tmp_path / "sub.star"], capsys)
    assert code == 0, err
    back = read_particle_star(tmp_path / "sub.star", require_poses=False, require_ctf=False).table
    np.testing.assert_allclose(back["defocus_u_angstrom"], rec["ctf/df1_A"][[1, 3, 4]], rtol=1e-6)


def _indices(folder, rows):
    np.save(folder / "sel.npy", np.asarray(rows))
    return folder / "sel.npy"


def test_symmetry_rule(run_dir, tmp_path, capsys):  # noqa: F811
    z = np.load(run_dir / "run" / "latent.npy")
    sym = np.stack([z, z[np.random.default_rng(2).permutation(len(z))]], axis=1)  # (n, 2, d)
    np.save(tmp_path / "sym.npy", sym)
    counts = {}
    for rule in ("any", "majority", "all"):
        code, printed, err = gm(["select", "--run", run_dir / "run", "--latent", tmp_path / "sym.npy", "--pc", "1",
                                 "--range", "0,10", "--rule", rule, "--out", tmp_path / f"{rule}.star"], capsys)
        assert code == 0, err
        assert f"selected when {rule} of 2 copies fall in the selection" in printed
        counts[rule] = len(read_particle_star(tmp_path / f"{rule}.star").table)
    assert counts["any"] > counts["majority"] == counts["all"] > 0  # majority of 2 = both


def test_rules_and_errors(run_dir, states, tmp_path, capsys):  # noqa: F811
    mask = np.array([1, 0, 0, 1, 1, 1, 0, 0, 0], bool)  # 3 particles x 3 copies
    assert particles_from_rows(mask, (3, 3, 2), "any").particles.tolist() == [0, 1]
    assert particles_from_rows(mask, (3, 3, 2), "majority").particles.tolist() == [1]
    assert particles_from_rows(mask, (3, 3, 2), "all").particles.tolist() == [1]
    with pytest.raises(ConfigError, match="rule 'most' unknown"):
        particles_from_rows(mask, (3, 3, 2), "most")
    for argv, words in (
        (["--state", "9"], ["state(s) [9] not among the k-means states"]),
        (["--pc", "1"], ["--pc and --range go together"]),
        (["--pc", "1", "--range", "5,6"], ["no particle selected"]),
        (["--indices", _indices(tmp_path, [0, 150])], ["sel.npy", "particle rows must lie in 0..149"]),
        (["--state", "0", "--analysis", tmp_path], ["kmeans.npz", "run gmmplat analyze --states K first"]),
    ):
        code, printed, err = gm(["select", "--run", run_dir / "run", *argv, "--out", tmp_path / "x.star"], capsys)
        assert code == 2 and "\n" not in err and err.startswith("gmmplat select: error:"), err
        for w in words:
            assert w in err, err
    code, printed, err = gm(["select", "--run", run_dir / "run", "--state", "0", "--out", tmp_path / "x.cs"], capsys)
    assert code == 2 and "written as .star, not .cs" in err
    assert not (tmp_path / "x.star").exists() and not (tmp_path / "x.cs").exists()


def test_notebook_selector_writes_through_the_same_function(run_dir, tmp_path):  # noqa: F811
    from gmmplat.viewers import latent_selector

    particles = read_particle_star(run_dir / "particles.star")
    latent = np.load(run_dir / "run" / "latent.npy")
    out = run_dir / "lasso.star"
    box = latent_selector(latent, particles, out)
    box.figure.selected = [5, 2, 9]  # what the front end sends after a lasso
    assert box.status.value == f"3 of {N_PARTICLES} particles written to {out}"
    original = starfile.read(run_dir / "particles.star", always_dict=True)["particles"]
    pd.testing.assert_frame_equal(starfile.read(out, always_dict=True)["particles"].reset_index(drop=True),
                                  original.iloc[[2, 5, 9]].reset_index(drop=True))
    box.select([])
    assert box.status.value.startswith("not written: the selection holds no particle")
