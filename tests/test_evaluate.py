"""Scores against ground truth: perfect for the truth itself, chance for shuffled latents."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gmmplat.analysis.evaluate import (
    check_rows, evaluate_latent, frame_rmsd, load_truth, neighbour_overlap, read_model_frames, spearman_best_pc,
)
from gmmplat.errors import InputError


@pytest.fixture
def truth():
    return np.random.default_rng(0).uniform(-1, 1, 600)


def test_truth_itself_scores_one(truth):
    s = evaluate_latent(truth[:, None], truth)
    assert s["spearman_abs"] > 0.999
    assert s["knn_r2"] > 0.99
    assert s["neighbour_overlap"] > 0.95


def test_nonlinear_embedding_in_higher_dimensions(truth):
    """A curved, noisy 3D embedding of t: the best PC and kNN still find it."""
    g = np.random.default_rng(1)
    z = np.stack([np.cos(1.2 * truth), np.sin(1.2 * truth), 0.05 * g.normal(size=len(truth))], 1)
    z = z + 0.02 * g.normal(size=z.shape)
    s = evaluate_latent(z, truth)
    assert s["spearman_abs"] > 0.95 and s["knn_r2"] > 0.9
    # the sign and order of PCs do not matter: a flipped, permuted latent scores the same
    s2 = evaluate_latent(-z[:, ::-1], truth)
    assert abs(s2["spearman_abs"] - s["spearman_abs"]) < 1e-9


def test_shuffled_latent_scores_chance(truth):
    shuffled = np.random.default_rng(2).permutation(truth)
    s = evaluate_latent(np.stack([shuffled, np.random.default_rng(3).normal(size=len(truth))], 1), truth)
    assert s["spearman_abs"] < 0.12
    assert s["knn_r2"] < 0.05
    assert s["neighbour_overlap"] < 3 * s["neighbour_overlap_random"] + 0.01


def test_best_of_first_three_pcs(truth):
    g = np.random.default_rng(4)
    # truth lies along the 3rd-largest direction, noise dominates the first two
    z = np.stack([10 * g.normal(size=len(truth)), 5 * g.normal(size=len(truth)), truth], 1)
    rho, pc = spearman_best_pc(z, truth)
    assert pc == 3 and rho > 0.99


def test_symmetry_expanded_uses_copy_zero(truth):
    z = np.stack([truth[:, None], np.random.default_rng(5).normal(size=(len(truth), 1))], 1)  # (n, 2, 1)
    assert evaluate_latent(z, truth)["spearman_abs"] > 0.999


def test_neighbour_overlap_partial():
    t = np.arange(100, dtype=float)
    assert neighbour_overlap(t[:, None], t, k=4) == pytest.approx(1.0)


def test_row_count_mismatch_is_one_line_error(tmp_path):
    with pytest.raises(InputError, match=r"latent has 5 rows but .*truth.csv has 6 particles") as e:
        check_rows(np.zeros((5, 2)), 6, tmp_path / "latent.npy", tmp_path / "truth.csv")
    assert "\n" not in str(e.value) and "latent.npy" in str(e.value)


def test_load_truth_checks(tmp_path):
    p = tmp_path / "truth.csv"
    pd.DataFrame({"particle_index": [2, 0, 1], "t": [0.2, 0.0, 0.1]}).to_csv(p, index=False)
    np.testing.assert_allclose(load_truth(p)["t"], [0.0, 0.1, 0.2])
    pd.DataFrame({"particle_index": [0, 1], "x": [0.2, 0.0]}).to_csv(p, index=False)
    with pytest.raises(InputError, match="column 't'"):
        load_truth(p)
    pd.DataFrame({"particle_index": [0, 0], "t": [0.2, 0.0]}).to_csv(p, index=False)
    with pytest.raises(InputError, match="0..n-1"):
        load_truth(p)


def test_frame_rmsd_perfect_and_neutral():
    """A morph that reproduces the true frames gives zero RMSD; the neutral model does not."""
    g = np.random.default_rng(6)
    neutral = g.normal(size=(20, 3)) * 5
    direction = g.normal(size=(20, 3))
    t_frames = np.linspace(-1, 1, 5)
    true = neutral[None] + t_frames[:, None, None] * direction[None]
    t = g.uniform(-1, 1, 300)
    frame = np.rint((t + 1) / 2 * 4).astype(int)
    latent = t_frames[frame][:, None]  # the frame's own coordinate: mean latent of a frame is exact
    table = frame_rmsd(latent, frame, true, lambda z: neutral[None] + z[:, :1, None] * direction[None], neutral)
    assert list(table["frame"]) == [0, 1, 2, 3, 4]
    assert table["rmsd_angstrom"].max() < 1e-9
    assert table["neutral_rmsd_angstrom"].iloc[0] > 1.0


def test_read_model_frames(tmp_path):
    import gemmi

    st = gemmi.Structure()
    for k in range(3):
        m = gemmi.Model(str(k + 1))
        ch = gemmi.Chain("A")
        r = gemmi.Residue()
        r.name, r.seqid = "ALA", gemmi.SeqId(1, " ")
        for j, name in enumerate(("N", "CA")):
            a = gemmi.Atom()
            a.name, a.element, a.pos = name, gemmi.Element("N" if name == "N" else "C"), gemmi.Position(k, j, 0)
            r.add_atom(a)
        ch.add_residue(r)
        m.add_chain(ch)
        st.add_model(m)
    st.write_pdb(str(tmp_path / "f.pdb"))
    f = read_model_frames(tmp_path / "f.pdb")
    assert f.shape == (3, 2, 3)
    np.testing.assert_allclose(f[2, 1], [2, 1, 0])
