"""Encoders with latent points given beforehand: `truth` (z = (t, 0, …) from a simulation's truth.csv,
the decoder-limit diagnostic) and `fixed` (rows of an (n, d) .npy); `gmmplat train --truth-latent` and
`--fixed-latent` train decoders on them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from test_train_fixtures import make_dataset, one_thread  # noqa: F401

from gmmplat import cli
from gmmplat.encoders import ENCODERS, StepContext
from gmmplat.errors import ConfigError, InputError
from gmmplat.model.gmm import GMM, XYZ
from gmmplat.physics.fourier import Band
from gmmplat.train import load_run


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("truth")
    star, gmm, t = make_dataset(folder, n=120, snr=0.5, seed=5)
    truth = folder / "truth.csv"
    order = np.random.default_rng(0).permutation(len(t))  # rows in any order: particle_index decides
    pd.DataFrame({"particle_index": order, "t": t[order]}).to_csv(truth, index=False)
    return star, gmm, t, truth


class _Batch:
    def __init__(self, index):
        self.index = torch.as_tensor(index)

    def __len__(self):
        return len(self.index)


def _encoder(truth, **kw):
    return ENCODERS.build("truth", 3, StepContext(None, Band(24, 4.0)), truth_csv=str(truth), **kw)


def test_latent_is_the_true_t_of_each_particle_row(shifted):
    _, _, t, truth = shifted
    rows = np.array([7, 0, 119, 7, 42])
    z = _encoder(truth)(_Batch(rows)).numpy()
    np.testing.assert_allclose(z[:, 0], t[rows], rtol=1e-6)
    assert z.shape == (5, 3) and not z[:, 1:].any()
    np.testing.assert_allclose(_encoder(truth, scale=2.0)(_Batch(rows)).numpy()[:, 0], 2 * t[rows], rtol=1e-6)
    assert not list(_encoder(truth).parameters())


def test_truth_encoder_input_errors(shifted, tmp_path):
    _, _, _, truth = shifted
    with pytest.raises(ConfigError, match="truth_csv"):
        ENCODERS.build("truth", 2, StepContext(None, Band(24, 4.0)))
    with pytest.raises(InputError, match="truth file not found"):
        _encoder(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="row 120 .*not the truth of this particle file"):
        _encoder(truth)(_Batch([3, 120]))


def _config(tmp_path, star, gmm):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({
        "latent_dim": 2, "latent_noise_std": 0.0,
        "encoder": {"kind": "image", "options": {"hidden": [16], "input_res_angstrom": 12.0}},
        "decoders": {"dom": {"kind": "rigid", "options": {"domains": ["domain"], "hidden": [16]}}},
        "rounds": [{"decoders": ["dom"], "epochs": 20, "batch_size": 12, "learning_rate": 1e-2,
                    "high_res_angstrom": 12.0}],
        "refine": {"anchors": 6}}))
    return path


def test_train_with_the_true_latent_learns_the_motion(shifted, tmp_path, capsys):
    """The rigid decoder trained on the true t moves the domain along +x by 5 Å · t (the simulated
    motion); the run records encoder 'truth' and no refinement, and latent.npy is (t, 0)."""
    star, gmm, t, truth = shifted
    run = tmp_path / "run"
    code = cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--config", str(_config(tmp_path, star, gmm)),
                     "--truth-latent", str(truth), "--out", str(run), "--no-progress", "--skip-data-check"])
    assert code == 0, capsys.readouterr()
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["encoder"]["kind"] == "truth" and config["refine"]["anchors"] == 0
    z = np.load(run / "latent.npy")
    np.testing.assert_allclose(z[:, 0], t, rtol=1e-6)
    assert not z[:, 1].any() and not (run / "refine.json").exists()
    neutral = GMM.load(gmm)
    mask = torch.as_tensor(neutral.masks()["domain"])
    with torch.no_grad():
        params = load_run(run).model.decode(torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    move = (params[1, mask, XYZ] - params[0, mask, XYZ]).mean(0).numpy()  # true: (10, 0, 0) Å
    assert 8.0 < move[0] < 12.0 and np.all(np.abs(move[1:]) < 1.5), move


def test_truth_latent_with_other_particles_is_one_line_error(shifted, tmp_path, capsys):
    star, gmm, t, _ = shifted
    short = tmp_path / "truth.csv"
    pd.DataFrame({"particle_index": np.arange(100), "t": t[:100]}).to_csv(short, index=False)
    run = tmp_path / "run"
    code = cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--config", str(_config(tmp_path, star, gmm)),
                     "--truth-latent", str(short), "--out", str(run), "--no-progress", "--skip-data-check"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "truth.csv" in err[0] and "holds 100 particles" in err[0], err
    assert not (run / "model.pt").exists()


def test_fixed_encoder_returns_the_given_rows(tmp_path):
    z = np.random.default_rng(1).standard_normal((10, 3)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    enc = ENCODERS.build("fixed", 3, StepContext(None, Band(24, 4.0)), latent_npy=str(tmp_path / "z.npy"))
    rows = np.array([9, 0, 4, 4])
    np.testing.assert_array_equal(enc(_Batch(rows)).numpy(), z[rows])
    assert not list(enc.parameters())
    with pytest.raises(InputError, match="row 10 .*not a latent of these particles"):
        enc(_Batch([10]))


def test_tables_are_read_from_their_files_not_saved(shifted, tmp_path):
    """The table is not in the state dict (loading a run reads the file again), and state dicts that
    held it (runs written before: ``latent``, or the truth encoder's ``t``) still load, strictly."""
    _, _, t, truth = shifted
    np.save(tmp_path / "z.npy", np.ones((4, 3), np.float32))
    fixed = ENCODERS.build("fixed", 3, StepContext(None, Band(24, 4.0)), latent_npy=str(tmp_path / "z.npy"))
    for enc, old in ((_encoder(truth), {"t": torch.zeros(len(t))}), (fixed, {"latent": torch.zeros(4, 3)})):
        assert dict(enc.state_dict()) == {}
        before = enc.latent.clone()
        enc.load_state_dict(old, strict=True)
        assert torch.equal(enc.latent, before)  # the file's table, not the saved one


@pytest.mark.parametrize("content, words", [
    (None, "latent file not found"),
    (b"not numpy", "not a readable .npy file"),
    (np.array([["a", "b"]]), r"not a latent array \(.npy of numbers\)"),
    (np.zeros(5), r"expected a latent array \(n particles, d\)"),
    (np.array([[0.0, 1.0], [np.nan, 0.0]]), "NaN/inf values .*row 1"),
    (np.zeros((5, 2)), "2-D latent points but latent_dim is 3"),
])
def test_fixed_encoder_bad_files(tmp_path, content, words):
    path = tmp_path / "z.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        np.save(path, content)
    with pytest.raises(InputError, match=words) as info:
        ENCODERS.build("fixed", 3, StepContext(None, Band(24, 4.0)), latent_npy=str(path))
    assert "z.npy" in str(info.value)
    with pytest.raises(ConfigError, match="latent_npy"):
        ENCODERS.build("fixed", 3, StepContext(None, Band(24, 4.0)))


def test_train_on_a_fixed_latent(shifted, tmp_path, capsys):
    """--fixed-latent: the latent dimension is the file's, no refinement, latent.npy is the file; the rigid
    decoder trained on (t, 0, 0) learns the domain shift as on the truth; wrong row count: one line."""
    star, gmm, t, _ = shifted
    z = np.zeros((len(t), 3), np.float32)
    z[:, 0] = t
    np.save(tmp_path / "z.npy", z)
    run = tmp_path / "run"
    base = ["train", "--star", str(star), "--gmm", str(gmm), "--config", str(_config(tmp_path, star, gmm)),
            "--no-progress", "--skip-data-check"]
    assert cli.main(base + ["--fixed-latent", str(tmp_path / "z.npy"), "--out", str(run)]) == 0, capsys.readouterr()
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["encoder"]["kind"] == "fixed" and config["latent_dim"] == 3 and config["refine"]["anchors"] == 0
    np.testing.assert_array_equal(np.load(run / "latent.npy"), z)
    mask = torch.as_tensor(GMM.load(gmm).masks()["domain"])
    with torch.no_grad():
        params = load_run(run).model.decode(torch.tensor([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    move = (params[1, mask, XYZ] - params[0, mask, XYZ]).mean(0).numpy()  # true: (10, 0, 0) Å
    assert 8.0 < move[0] < 12.0 and np.all(np.abs(move[1:]) < 1.5), move
    np.save(tmp_path / "short.npy", z[:50])
    capsys.readouterr()
    code = cli.main(base + ["--fixed-latent", str(tmp_path / "short.npy"), "--out", str(tmp_path / "run2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "short.npy" in err[0] and "holds 50 latent points" in err[0], err
    code = cli.main(base + ["--fixed-latent", str(tmp_path / "z.npy"), "--truth-latent", str(shifted[3]),
                            "--out", str(tmp_path / "run3")])
    assert code != 0 and "give one of them" in capsys.readouterr().err
