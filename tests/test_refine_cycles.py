"""Refinement cycles (stages of gmmplat.train.schedule): principal subspace, anchor stretch, config, a trained run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_latent_refine import _decode, _tiny_config
from test_train_fixtures import make_dataset, one_thread  # noqa: F401

from gmmplat.errors import ConfigError
from gmmplat.model.gmm import GMM
from gmmplat.refine.latent import anchor_points, principal_subspace
from gmmplat.train import RunConfig, Trainer, load_run
from gmmplat.train.schedule import cycle_rounds
from gmmplat.train.stages import CycleLatent


def test_principal_subspace_keeps_the_axes_above_the_mean_variance():
    """A line along (1, 1, 0, 0)/√2 with spread 1 plus isotropic scatter 0.1: the Kaiser rule keeps one
    axis; the projection is the line itself, in the input's coordinates, the mean unchanged."""
    g = np.random.default_rng(0)
    t = g.standard_normal(2000)
    u = np.array([1.0, 1.0, 0.0, 0.0]) / np.sqrt(2)
    z = 3.0 + t[:, None] * u + 0.1 * g.standard_normal((2000, 4))
    p, k = principal_subspace(z)
    assert k == 1 and p.shape == z.shape and p.dtype == np.float32
    np.testing.assert_allclose(p.mean(0), z.mean(0), atol=1e-5)
    assert np.linalg.matrix_rank(p - p.mean(0), tol=1e-3) == 1  # on a line ...
    axis = np.linalg.svd(p - p.mean(0), full_matrices=False)[2][0]
    assert abs(axis @ u) > 0.999  # ... along u
    assert abs(np.corrcoef((p - p.mean(0)) @ u, t)[0, 1]) > 0.99
    same, k4 = principal_subspace(z, 4)
    assert k4 == 4 and np.allclose(same, z, atol=1e-5)
    two, k2 = principal_subspace(z, 2)
    assert k2 == 2 and np.linalg.matrix_rank(two - two.mean(0), tol=1e-3) == 2
    plane = np.c_[g.standard_normal((500, 2)), 0.05 * g.standard_normal((500, 2))]
    assert principal_subspace(plane)[1] == 2  # two strong axes of four
    with pytest.raises(ConfigError, match="1 to 4"):
        principal_subspace(z, 5)


def test_stretched_anchors_move_away_from_their_mean():
    g = np.random.default_rng(1)
    z = g.uniform(-1, 1, size=(600, 1)) * np.array([[2.0]])
    c1, p1 = anchor_points(z, 8, seed=0)
    c2, p2 = anchor_points(z, 8, seed=0, stretch=1.5)
    mean = p1 @ c1
    np.testing.assert_allclose(p2, p1)
    np.testing.assert_allclose(c2 - mean, 1.5 * (c1 - mean), atol=1e-12)
    assert c1.max() < z.max() and c1.min() > z.min()  # k-means centres sit inside the ends
    assert c2.max() > c1.max() and c2.min() < c1.min()


def test_cycle_config_errors():
    base = {"decoders": {"d": {"kind": "free"}}, "rounds": [{"epochs": 1, "decoders": ["d"]},
                                                             {"epochs": 1, "decoders": ["d"]}]}
    for bad, words in (({"cycles": 2}, "need anchors"), ({"anchors": 6, "cycles": -1}, "cycles"),
                       ({"anchors": 6, "cycle_stretch": 0.5}, "cycle_stretch"),
                       ({"anchors": 6, "restart": "no"}, "true or false"),
                       ({"anchors": 6, "cycle_epochs": [0, 0]}, "every round has 0 epochs"),
                       ({"anchors": 6, "cycle_epochs": "4"}, "list of epochs"),
                       ({"anchors": 6, "cycle_epochs": [4]}, "1 entries for 2 round"),
                       ({"anchors": 6, "components": 5}, "latent_dim is 4"),
                       ({"anchors": 6, "components": 0}, "components"),
                       ({"anchors": 6, "cycles": 2, "cycle_anchors": [6]}, "cycle_anchors: expected a number"),
                       ({"anchors": 6, "cycles": 2, "cycle_anchors": 1}, "cycle_anchors: must be >= 2"),
                       ({"anchors": 6, "last_cycle_epochs": [4, 1]}, "last_cycle_epochs: works in the refinement cycles"),
                       ({"anchors": 6, "last_cycle_restart": True}, "last_cycle_restart: works in the refinement cycles"),
                       ({"anchors": 6, "pose_cycles": 1}, "pose_cycles: works in the refinement cycles"),
                       ({"anchors": 6, "cycles": 2, "pose_cycles": 0}, "pose_cycles: must be >= 1"),
                       ({"anchors": 6, "cycles": 2, "pose_cycles": 1.5}, "pose_cycles"),
                       ({"anchors": 6, "cycles": 2, "last_cycle_epochs": [0, 0]}, "last_cycle_epochs: every round has 0"),
                       ({"anchors": 6, "cycles": 2, "last_cycle_epochs": [4]}, "last_cycle_epochs: 1 entries for 2 round"),
                       ({"anchors": 6, "cycles": 2, "last_cycle_restart": "yes"}, "last_cycle_restart.*true or false")):
        with pytest.raises(ConfigError, match=words):
            RunConfig.from_dict({**base, "refine": bad})
    only_encoder = {**base, "rounds": [{"epochs": 1, "decoders": ["d"]},
                                       {"epochs": 1, "decoders": ["d"], "train": ["encoder"]}],
                    "refine": {"anchors": 6, "cycles": 1, "cycle_epochs": [0, 3]}}
    with pytest.raises(ConfigError, match="no round trains a decoder"):
        cycle_rounds(RunConfig.from_dict(only_encoder))
    added = {"decoders": {"d": {"kind": "free"}, "e": {"kind": "free"}},
             "rounds": [{"epochs": 1, "decoders": ["d"]}, {"epochs": 1, "decoders": ["d", "e"]}],
             "refine": {"anchors": 6, "cycles": 1, "cycle_epochs": [2, 0]}}
    with pytest.raises(ConfigError, match="decoder.s. e of the last round"):
        cycle_rounds(RunConfig.from_dict(added))
    assert cycle_rounds(RunConfig.from_dict({**base, "refine": {"anchors": 6, "cycles": 1,
                                                                "cycle_epochs": [0, 3]}})) == [(1, 3)]


def test_cycle_latent_rows_follow_the_symmetry_copies():
    class B:
        index = torch.tensor([0, 1, 2])
        sym_index = torch.tensor([1, 0, 1])

    table = np.arange(12, dtype=np.float32).reshape(6, 2)  # 3 particles x 2 copies
    enc = CycleLatent(2, None, table, n_sym=2, cycle=1)
    np.testing.assert_array_equal(enc(B()).numpy(), table[[1, 2, 5]])
    assert list(enc.state_dict()) == [] and not list(enc.parameters())


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("cycles"), n=120, snr=0.5, seed=3)


def test_run_with_cycles_trains_the_decoders_on_the_cycle_latent(shifted, tmp_path, monkeypatch, capsys):
    """Two cycles: losses.csv gets their rows, latent.npy = latent_cycle.npy (one principal axis), the
    decoders are retrained (differ from the run without cycles), refine.json records each cycle, the run
    loads and the morph reference is the cycle latent's median; `gmmplat refine` starts from it."""
    import gmmplat.refine.latent as lr
    import gmmplat.refine.latent as cy
    from gmmplat import cli
    from gmmplat.analysis.morph_reference import reference_latent, reference_latent_of
    from gmmplat.analysis.runs import load_analysis_run

    star, gmm, t = shifted
    real = lr.refine_latent

    def refine_with_the_true_motion(decode, dataset, z, **kw):  # 1-epoch decoders know no motion yet
        return real(_decode(GMM.load(gmm)), dataset, z, **kw)

    monkeypatch.setattr(cy, "refine_latent", refine_with_the_true_motion)
    monkeypatch.setattr(lr, "refine_latent", refine_with_the_true_motion)
    refine = {"anchors": 6, "high_res_angstrom": 12.0, "cycles": 2, "cycle_epochs": [2], "restart": False,
              "cycle_anchors": 4}
    Trainer(_tiny_config(star, gmm, refine), tmp_path / "on", progress=False).run()
    Trainer(_tiny_config(star, gmm, {"anchors": 6, "high_res_angstrom": 12.0}), tmp_path / "off",
            progress=False).run()
    on, off = tmp_path / "on", tmp_path / "off"
    losses = (on / "losses.csv").read_text().splitlines()
    assert len(losses) == 1 + 1 + 2 * 2 and losses[-1].startswith("3,cycle 2,2,5,")
    z, z_cycle, z_enc = (np.load(on / f) for f in ("latent.npy", "latent_cycle.npy", "latent_encoder.npy"))
    np.testing.assert_array_equal(z, z_cycle)
    np.testing.assert_array_equal(z_enc, np.load(off / "latent_encoder.npy"))  # same encoder and seed
    assert np.linalg.matrix_rank(z - z.mean(0), tol=1e-4) == 1
    assert abs(np.corrcoef((z - z.mean(0)) @ np.linalg.svd(z - z.mean(0))[2][0], t)[0, 1]) > 0.8
    info = json.loads((on / "refine.json").read_text())
    assert info["latent_npy"] == "cycle" and [c["cycle"] for c in info["cycles"]] == [1, 2]
    assert all(c["components"] == 1 and c["seconds"] > 0 for c in info["cycles"])
    assert [c["anchors"] for c in info["cycles"]] == [4, 6]
    assert info["options"]["anchor_stretch"] == 1.5 and info["n_anchors"] == 6
    run_on, run_off = load_run(on), load_run(off)
    probe = torch.as_tensor(z[:4])
    assert not torch.allclose(run_on.model.decode(probe), run_off.model.decode(probe))
    for a, b in zip(run_on.model.encoder.state_dict().values(), run_off.model.encoder.state_dict().values()):
        assert torch.equal(a, b)  # the encoder is kept as trained
    np.testing.assert_allclose(reference_latent_of(load_analysis_run(on)), reference_latent(z_cycle))
    capsys.readouterr()
    assert cli.main(["refine", "--run", str(on), "--anchors", "8", "--high-res", "12", "--no-progress"]) == 0
    again = json.loads((on / "refine.json").read_text())
    assert again["n_anchors"] == 8 and again["options"]["anchor_stretch"] == 1.5 and len(again["cycles"]) == 2
    np.testing.assert_array_equal(np.load(on / "latent_cycle.npy"), z_cycle)
    np.testing.assert_array_equal(np.load(on / "latent_encoder.npy"), z_enc)
    # refined from the cycle latent (one axis), not from the encoder's 2-D scatter
    assert np.linalg.matrix_rank(np.load(on / "latent.npy") - z_cycle.mean(0), tol=1e-4) == 1


def test_train_cli_refine_cycles_option(shifted, tmp_path, capsys):
    from gmmplat import cli

    star, gmm, _ = shifted
    args = ["train", "--star", str(star), "--gmm", str(gmm), "--preset", "free", "--print-config"]
    assert cli.main(args + ["--refine-cycles", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["refine"]["cycles"] == 2
    assert cli.main(args + ["--refine-anchors", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["refine"]["cycles"] == 0
    assert cli.main(args + ["--refine-anchors", "0", "--refine-cycles", "1"]) != 0
    assert "--refine-cycles needs the latent refinement" in capsys.readouterr().err


@pytest.mark.parametrize("stop_at", ["first cycle epoch", "second refinement"])
def test_a_run_stopped_in_its_cycles_resumes_to_the_same_result(shifted, tmp_path, monkeypatch, stop_at):
    """Every stage is checkpointed: a run stopped inside its cycles (in a fixed-latent epoch, or in the
    second cycle's refinement) resumes from its last stage and ends where an uninterrupted run ends
    (same latent, same decoders, same history)."""
    import gmmplat.train.loop as loop
    import gmmplat.refine.latent as rl

    star, gmm, _ = shifted
    refine = {"anchors": 6, "high_res_angstrom": 12.0, "cycles": 2, "cycle_epochs": [2], "restart": False,
              "cycle_anchors": 4}
    Trainer(_tiny_config(star, gmm, refine), tmp_path / "whole", progress=False).run()
    real_epoch, real_refine, calls, stopped = loop.Trainer.train_epoch, rl.refine_latent, [], []

    def epoch(self, *args, cycle=0, **kw):
        if stop_at == "first cycle epoch" and cycle == 1 and not stopped:
            stopped.append(1)
            raise KeyboardInterrupt
        return real_epoch(self, *args, cycle=cycle, **kw)

    def stop_refine(*args, **kw):
        calls.append(0)
        if stop_at == "second refinement" and len(calls) == 2 and not stopped:
            stopped.append(1)
            raise KeyboardInterrupt
        return real_refine(*args, **kw)

    monkeypatch.setattr(loop.Trainer, "train_epoch", epoch)
    monkeypatch.setattr(rl, "refine_latent", stop_refine)
    with pytest.raises(KeyboardInterrupt):
        Trainer(_tiny_config(star, gmm, refine), tmp_path / "stopped", progress=False).run()
    assert (tmp_path / "stopped" / "checkpoint.pt").is_file() and not (tmp_path / "stopped" / "model.pt").exists()
    Trainer(_tiny_config(star, gmm, refine), tmp_path / "stopped", resume=True, progress=False).run()
    for name in ("latent.npy", "latent_cycle.npy", "latent_encoder.npy", "quality.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / "stopped" / name), np.load(tmp_path / "whole" / name))
    a, b = load_run(tmp_path / "whole").model.state_dict(), load_run(tmp_path / "stopped").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    whole, stopped = ((tmp_path / r / "losses.csv").read_text().splitlines() for r in ("whole", "stopped"))
    assert [r.split(",")[:5] for r in stopped] == [r.split(",")[:5] for r in whole]
    assert len(stopped) == 1 + 1 + 2 * 2 and stopped[-1].startswith("3,cycle 2,2,5,")


def test_cycles_leave_junk_out_and_refine_poses(tmp_path, monkeypatch, capsys):
    """Empty images are found by their fitted scale and left out of the cycles; the first of two cycles
    refines the poses (the last does not), the run writes quality, fitted scale and pose corrections."""
    import gmmplat.refine.latent as lr
    import gmmplat.refine.latent as cy
    from test_train_fixtures import overwrite_images

    star, gmm, t = make_dataset(tmp_path / "data", n=96, snr=0.5, seed=4)
    empty = np.arange(0, 96, 8)  # 12 images of noise only
    import mrcfile

    with mrcfile.open(tmp_path / "data" / "stack.mrcs") as m:
        sd = float(m.data.std())  # about the noise's (SNR 0.5)
    g = np.random.default_rng(0)
    overwrite_images(tmp_path / "data" / "stack.mrcs", {int(i): g.normal(0, sd, (24, 24)) for i in empty})
    real = lr.refine_latent

    def refine_with_the_true_motion(decode, dataset, z, **kw):  # 1-epoch decoders know no motion yet
        return real(_decode(GMM.load(gmm)), dataset, z, **kw)

    monkeypatch.setattr(cy, "refine_latent", refine_with_the_true_motion)
    refine = {"anchors": 6, "high_res_angstrom": 12.0, "cycles": 2, "cycle_epochs": [1], "restart": False,
              "junk_scale": 0.5, "pose_steps": 5}
    Trainer(_tiny_config(star, gmm, refine), tmp_path / "run", progress=False).run()
    info = json.loads((tmp_path / "run" / "refine.json").read_text())
    first, last = info["cycles"]
    assert first["junk_left_out"] >= len(empty) and first["junk_left_out"] < 24
    assert "pose_median_rotation_deg" in first and not any(k.startswith("pose_") for k in last)
    scale = np.load(tmp_path / "run" / "fit_scale.npy")
    assert scale[empty].max() < 0.5 * np.median(scale)
    assert np.load(tmp_path / "run" / "quality.npy").shape == (96,)
    assert np.load(tmp_path / "run" / "pose_correction.npy").shape == (96, 5)
    from gmmplat import cli

    capsys.readouterr()  # `gmmplat refine` refines at the poses the decoders were trained at
    assert cli.main(["refine", "--run", str(tmp_path / "run"), "--anchors", "6", "--high-res", "12",
                     "--no-progress"]) == 0
    assert "poses corrected by the run's cycles" in capsys.readouterr().out
    np.save(tmp_path / "run" / "pose_correction.npy", np.zeros((3, 5), np.float32))
    assert cli.main(["refine", "--run", str(tmp_path / "run"), "--anchors", "6", "--high-res", "12",
                     "--no-progress"]) == 2
    assert "pose_correction.npy" in capsys.readouterr().err
