"""``gmmplat train``: one-line errors with exit code 2, presets, and a small end-to-end
run whose latent space recovers the simulated conformation."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from test_train_fixtures import make_dataset, make_neutral, one_thread, overwrite_images  # noqa: F401

from gmmplat import cli
from gmmplat.errors import ConfigError
from gmmplat.train import load_run, preset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    star, gmm, t = make_dataset(folder, n=120, snr=1.0, shift_angstrom=6.0, n_gaussians=40)
    return folder, star, gmm, t


def run_cli(argv, capsys):
    code = cli.main(["train", *map(str, argv)])
    err = capsys.readouterr().err.strip()
    return code, err


def one_line_error(code, err, *needles):
    assert code == 2, err
    assert err.startswith("gmmplat train: error: ") and "\n" not in err and "Traceback" not in err
    for n in needles:
        assert n in err, err


def config_file(folder, **round_overrides):
    d = {"latent_dim": 2, "decoders": {"dom": {"kind": "rigid", "options": {"domains": ["domain"]}}},
         "rounds": [{"decoders": ["dom"], "epochs": 1, **round_overrides}]}
    path = folder / "run.json"
    path.write_text(json.dumps(d))
    return path


def test_cli_bad_band_and_bad_json(data, tmp_path, capsys):
    folder, star, gmm, _ = data
    cfg = config_file(tmp_path, high_res_angstrom=3.0)
    code, err = run_cli(["--star", star, "--gmm", gmm, "--config", cfg, "--out", tmp_path / "r"], capsys)
    one_line_error(code, err, "rounds[0]: high-resolution limit 3 Å is beyond Nyquist (8 Å at 4 Å/px)")
    (tmp_path / "bad.json").write_text("{not json")
    code, err = run_cli(["--star", star, "--gmm", gmm, "--config", tmp_path / "bad.json", "--out", tmp_path / "r"],
                        capsys)
    one_line_error(code, err, "bad.json: not valid JSON")
    (tmp_path / "k.json").write_text(json.dumps({"rounds": [{"epochs": 1, "decoders": ["a"]}], "decoders": {},
                                                 "learning_rate": 1}))
    code, err = run_cli(["--star", star, "--gmm", gmm, "--config", tmp_path / "k.json", "--out", tmp_path / "r"],
                        capsys)
    one_line_error(code, err, "k.json: config: unknown key(s) learning_rate")
    assert not (tmp_path / "r").exists()


def test_cli_gmm_mismatch_and_missing_files(data, tmp_path, capsys):
    folder, star, gmm, _ = data
    other = tmp_path / "other.npz"
    make_neutral(box=32, apix=4.0).save(other)
    code, err = run_cli(["--star", star, "--gmm", other, "--preset", "rigid", "--domain", "domain",
                         "--out", tmp_path / "r"], capsys)
    one_line_error(code, err, str(other), "GMM box 32 px at 4 Å/px disagrees with the particles")
    code, err = run_cli(["--star", tmp_path / "none.star", "--gmm", gmm, "--preset", "free", "--out", tmp_path / "r"],
                        capsys)
    one_line_error(code, err, "none.star", "not found")
    code, err = run_cli(["--star", star, "--gmm", gmm, "--preset", "rigid", "--out", tmp_path / "r"], capsys)
    one_line_error(code, err, "needs --domain", "domain")


def test_cli_nan_images_reported(tmp_path, capsys):
    star, gmm, _ = make_dataset(tmp_path / "nan", n=16, snr=1.0)
    overwrite_images(tmp_path / "nan" / "stack.mrcs", {2: np.nan, 11: 0.0})
    code, err = run_cli(["--star", star, "--gmm", gmm, "--preset", "rigid", "--domain", "domain", "--check-images",
                         "--out", tmp_path / "r"], capsys)
    one_line_error(code, err, "particles.star", "STAR row(s) 2", "constant image(s) at STAR row(s) 11")


def test_presets_build_and_print(data, capsys):
    folder, star, gmm, _ = data
    from gmmplat.gmm import GMM

    neutral = GMM.load(gmm)
    for name in ("rigid", "hierarchical", "free", "multi"):
        cfg = preset(name, neutral, domain="domain")
        cfg.check_bands(neutral.box, neutral.pixel_size_angstrom)
        assert cfg.rounds[0].high_res_angstrom == 15.0
    multi = preset("multi", neutral, domain="domain", epochs=[3, 1])
    assert [r.epochs for r in multi.rounds] == [3, 1]
    assert multi.rounds[1].decoders == ["domain", "core"] and multi.decoders["core"].subset == "!domain"
    assert [r.decoder_options for r in preset("hierarchical", neutral).rounds] == [{}, {"hier": {"train_transition": True}}]
    with pytest.raises(ConfigError, match="2 round"):
        preset("free", neutral, epochs=[1, 2, 3])
    code = cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--preset", "hierarchical", "--epochs", "4,2",
                     "--out", str(folder / "unused"), "--print-config"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["epochs"] for r in printed["rounds"]] == [4, 2]
    assert printed["data"]["star"] == str(star) and not (folder / "unused").exists()


def test_small_rigid_run_recovers_conformation(data, tmp_path, capsys):
    """Acceptance in miniature: 120 particles at SNR 1, the rigid preset with small networks;
    |Spearman| between the truth and the best of the first three latent PCs (0.87 measured)."""
    folder, star, gmm, t = data
    cfg = preset("rigid", __import__("gmmplat.gmm", fromlist=["GMM"]).GMM.load(gmm), domain="domain", epochs=6,
                 batch_size=16).to_dict()
    cfg["encoder"]["options"]["hidden"] = [64, 32]
    cfg["decoders"]["domain"]["options"]["hidden"] = [32]
    cfg.pop("data")
    (tmp_path / "run.json").write_text(json.dumps(cfg))
    code = cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--config", str(tmp_path / "run.json"),
                     "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "done:" in capsys.readouterr().out
    z = load_run(tmp_path / "run").latent.astype(np.float64)
    zc = z - z.mean(0)
    pcs = zc @ np.linalg.svd(zc, full_matrices=False)[2].T
    best = max(abs(spearmanr(pcs[:, i], t)[0]) for i in range(3))
    assert best >= 0.7, best
