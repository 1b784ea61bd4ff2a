"""Trainer: resume reproduces an uninterrupted run, frozen/trained parameters per round,
NaN handling, run-folder outputs and configuration checks."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_train_fixtures import make_dataset, one_thread  # noqa: F401 (autouse fixture)

from gmmplat.errors import ConfigError
from gmmplat.train import RunConfig, Trainer, TrainingDiverged, load_run
from gmmplat.train.builder import build_decoder
from gmmplat.train.checkpoint import load_checkpoint

SMALL_MLP = {"hidden": [16]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    star, gmm, t = make_dataset(tmp_path_factory.mktemp("train_data"), n=40, snr=2.0)
    return star, gmm, t


def two_round_config(star, gmm, **data) -> RunConfig:
    """Round 1: rigid decoder at 12 Å; round 2 adds a bond-regularized free decoder for the core."""
    return RunConfig.from_dict({
        "latent_dim": 2, "latent_noise_std": 0.1, "latent_penalty": 0.01,
        "encoder": {"kind": "image", "options": {"hidden": [16], "input_res_angstrom": 12.0}},
        "decoders": {"dom": {"kind": "rigid", "options": {"domains": ["domain"], **SMALL_MLP}},
                     "core": {"kind": "free", "subset": "!domain", "options": SMALL_MLP}},
        "rounds": [
            {"decoders": ["dom"], "epochs": 2, "batch_size": 12, "learning_rate": 3e-3, "high_res_angstrom": 12.0},
            {"decoders": ["dom", "core"], "train": ["encoder", "core"], "epochs": 2, "batch_size": 12,
             "learning_rate": 1e-3, "regularizers": [{"kind": "ca_backbone", "weight": 0.5}]},
        ],
        "data": {"star": str(star), "gmm": str(gmm), **data},
    })


class Interrupt(Exception):
    pass


def interrupt_after(monkeypatch, n_calls: int):
    """Make the n-th training step of the next run raise (after earlier steps changed the model)."""
    original = Trainer._losses
    count = {"n": 0}

    def losses(self, *a, **k):
        count["n"] += 1
        if count["n"] == n_calls:
            raise Interrupt()
        return original(self, *a, **k)

    monkeypatch.setattr(Trainer, "_losses", losses)


def final_state(run_dir):
    return torch.load(run_dir / "model.pt", weights_only=False)["state_dict"]


def test_resume_after_interruptions_matches_uninterrupted(dataset, tmp_path, monkeypatch):
    star, gmm, _ = dataset
    cfg = two_round_config(star, gmm)
    Trainer(cfg, tmp_path / "a", progress=False).run()

    b = tmp_path / "b"
    interrupt_after(monkeypatch, 5)  # round 1, epoch 2, second step (3 steps per epoch)
    with pytest.raises(Interrupt):
        Trainer(cfg, b, progress=False).run()
    assert load_checkpoint(b / "checkpoint.pt")["epoch"] == 1
    interrupt_after(monkeypatch, 5)  # after the replayed epoch: round 2 (new decoder), epoch 1
    with pytest.raises(Interrupt):
        Trainer(cfg, b, resume=True, progress=False).run()
    ck = load_checkpoint(b / "checkpoint.pt")
    assert (ck["round"], ck["epoch"]) == (0, 2)
    monkeypatch.undo()
    Trainer(cfg, b, resume=True, progress=False).run()

    sa, sb = final_state(tmp_path / "a"), final_state(b)
    assert sa.keys() == sb.keys() and any(".decoders.1." in k for k in sa)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert np.array_equal(np.load(tmp_path / "a" / "latent.npy"), np.load(b / "latent.npy"))
    rows_a = (tmp_path / "a" / "losses.csv").read_text().splitlines()
    rows_b = (b / "losses.csv").read_text().splitlines()
    strip = lambda rows: [",".join(r.split(",")[:7]) for r in rows]  # noqa: E731 (timing columns differ)
    assert strip(rows_a) == strip(rows_b) and len(rows_a) == 5
    env = json.loads((b / "environment.json").read_text())
    assert {"torch", "numpy", "gmmplat", "python", "seed", "command_line"} <= set(env) and len(env["resumed"]) == 2


def test_a_run_stopped_inside_an_epoch_resumes_there_bit_identically(dataset, tmp_path, monkeypatch):
    """With checkpoints every batch, a stop inside an epoch loses only the batch it was in; the resumed
    run continues from the batch after the checkpoint (same batches, noise, sums and random state)."""
    star, gmm, _ = dataset
    cfg = two_round_config(star, gmm)
    Trainer(cfg, tmp_path / "a", progress=False).run()
    b = tmp_path / "b"
    interrupt_after(monkeypatch, 2)  # round 1, epoch 1, second of its 3 batches
    with pytest.raises(Interrupt):
        Trainer(cfg, b, progress=False, checkpoint_batches=1).run()
    ck = load_checkpoint(b / "checkpoint.pt")
    assert (ck["round"], ck["epoch"], ck["partial"]["batch"]) == (0, 0, 1)
    interrupt_after(monkeypatch, 4)  # batches 2 and 3 of epoch 1, then epoch 2's first; stop in its second
    with pytest.raises(Interrupt):
        Trainer(cfg, b, resume=True, progress=False, checkpoint_batches=1).run()
    ck = load_checkpoint(b / "checkpoint.pt")
    assert (ck["round"], ck["epoch"], ck["partial"]["batch"]) == (0, 1, 1)
    monkeypatch.undo()
    Trainer(cfg, b, resume=True, progress=False, checkpoint_batches=1).run()
    sa, sb = final_state(tmp_path / "a"), final_state(b)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert np.array_equal(np.load(tmp_path / "a" / "latent.npy"), np.load(b / "latent.npy"))
    strip = lambda rows: [",".join(r.split(",")[:7]) for r in rows]  # noqa: E731 (timing columns differ)
    assert strip((tmp_path / "a" / "losses.csv").read_text().splitlines()) == strip(
        (b / "losses.csv").read_text().splitlines())
    with pytest.raises(ConfigError, match="checkpoint every"):
        Trainer(cfg, tmp_path / "c", progress=False, checkpoint_batches=-1)


def test_train_command_checkpoints_inside_an_epoch(dataset, tmp_path, monkeypatch):
    from gmmplat import cli

    star, gmm, _ = dataset
    path = tmp_path / "config.json"
    path.write_text(two_round_config(star, gmm).to_json())
    argv = ["train", "--star", str(star), "--gmm", str(gmm), "--config", str(path), "--out", str(tmp_path / "r"),
            "--skip-data-check", "--no-progress", "--checkpoint-every", "1"]
    interrupt_after(monkeypatch, 3)  # the third batch of the first epoch
    assert cli.main(argv) != 0
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["partial"]["batch"] == 2
    monkeypatch.undo()
    assert cli.main([*argv, "--resume"]) == 0
    assert cli.main([*argv[:-2], "--checkpoint-every", "-1"]) == 2  # argparse: a count of batches ≥ 0


def test_resume_refuses_other_configuration_and_existing_folder(dataset, tmp_path, monkeypatch):
    star, gmm, _ = dataset
    cfg = two_round_config(star, gmm)
    interrupt_after(monkeypatch, 2)  # before the first checkpoint: config.json only, not a run yet
    with pytest.raises(Interrupt):
        Trainer(cfg, tmp_path / "r", progress=False).run()
    assert (tmp_path / "r" / "config.json").is_file() and not (tmp_path / "r" / "checkpoint.pt").exists()
    other_seed = two_round_config(star, gmm)
    other_seed.seed = 5
    interrupt_after(monkeypatch, 5)  # a corrected start in the same folder is accepted; stop after epoch 1
    with pytest.raises(Interrupt):
        Trainer(other_seed, tmp_path / "r", progress=False).run()
    assert json.loads((tmp_path / "r" / "config.json").read_text())["config"]["seed"] == 5
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(other_seed, tmp_path / "r", progress=False).run()
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupt):
        Trainer(cfg, tmp_path / "s", progress=False).run()
    interrupt_after(monkeypatch, 4)
    with pytest.raises(Interrupt):
        Trainer(cfg, tmp_path / "s", resume=True, progress=False).run()  # --resume with no checkpoint: a fresh start
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "s" / "checkpoint.pt")["epoch"] == 1
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(cfg, tmp_path / "s", progress=False).run()
    other = two_round_config(star, gmm)
    other.rounds[1].learning_rate = 5e-4
    with pytest.raises(ConfigError) as e:
        Trainer(other, tmp_path / "s", resume=True, progress=False).run()
    assert "\n" not in str(e.value) and "rounds[1].learning_rate was 0.001, now 0.0005" in str(e.value)
    sym = two_round_config(star, gmm, symmetry="C2")
    with pytest.raises(ConfigError, match="data.symmetry"):
        Trainer(sym, tmp_path / "s", resume=True, progress=False).run()


def test_hierarchical_transition_frozen_then_trained(dataset, tmp_path, monkeypatch):
    star, gmm, _ = dataset
    cfg = RunConfig.from_dict({
        "latent_dim": 2,
        "encoder": {"kind": "image", "options": {"hidden": [16]}},
        "decoders": {"h": {"kind": "hierarchical", "options": SMALL_MLP}},
        "rounds": [
            {"decoders": ["h"], "epochs": 1, "batch_size": 12, "learning_rate": 3e-3, "high_res_angstrom": 12.0},
            {"decoders": ["h"], "epochs": 1, "batch_size": 12, "learning_rate": 3e-3,
             "decoder_options": {"h": {"train_transition": True}}},
        ],
        "data": {"star": str(star), "gmm": str(gmm)},
    })
    legacy = cfg.to_dict()
    del legacy["rounds"][1]["decoder_options"]
    legacy["rounds"][1]["train_transition"] = True  # the older round key reads as the decoder's round option
    assert RunConfig.from_dict(legacy).hash() == cfg.hash()
    from gmmplat.model.gmm import GMM

    initial = build_decoder(cfg, "h", GMM.load(gmm))
    interrupt_after(monkeypatch, 4)  # first step of round 2
    with pytest.raises(Interrupt):
        Trainer(cfg, tmp_path / "h", progress=False).run()
    monkeypatch.undo()
    after1 = load_checkpoint(tmp_path / "h" / "checkpoint.pt")["model"]
    key = "decoder.decoders.0.transition"
    assert torch.equal(after1[key], initial.transition)  # constant in round 1
    mlp = [k for k in after1 if k.startswith("decoder.decoders.0.mlp") and k.endswith("weight")][-1]
    assert not torch.equal(after1[mlp], initial.state_dict()[mlp.split("decoders.0.", 1)[1]])  # round 1 trained
    Trainer(cfg, tmp_path / "h", resume=True, progress=False).run()
    after2 = final_state(tmp_path / "h")
    assert not torch.allclose(after2[key], after1[key])  # trained in round 2


def test_nan_loss_keeps_last_good_checkpoint(dataset, tmp_path, monkeypatch):
    star, gmm, _ = dataset
    cfg = two_round_config(star, gmm)
    original = Trainer._losses
    count = {"n": 0}

    def losses(self, *a, **k):
        count["n"] += 1
        total, data = original(self, *a, **k)
        return (total * float("nan"), data) if count["n"] == 5 else (total, data)

    monkeypatch.setattr(Trainer, "_losses", losses)
    with pytest.raises(TrainingDiverged) as e:
        Trainer(cfg, tmp_path / "n", progress=False).run()
    msg = str(e.value)
    assert "\n" not in msg and "round 1, epoch 2, batch 2" in msg and "last good checkpoint (round 1, epoch 1)" in msg
    ck = load_checkpoint(tmp_path / "n" / "checkpoint.pt")
    assert (ck["round"], ck["epoch"]) == (0, 1)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())
    assert len((tmp_path / "n" / "losses.csv").read_text().splitlines()) == 2
    assert not (tmp_path / "n" / "model.pt").exists()


def test_nan_gradient_with_a_finite_loss_stops_before_the_step(dataset, tmp_path, monkeypatch):
    star, gmm, _ = dataset
    cfg = two_round_config(star, gmm)
    original = Trainer._losses
    count = {"n": 0}

    def losses(self, batch, model, *a, **k):
        count["n"] += 1
        if count["n"] == 3:  # one element of one gradient becomes NaN; the loss stays finite
            p = next(q for q in model.parameters() if q.requires_grad)
            handle = p.register_hook(lambda g: g.flatten().index_fill(0, torch.tensor([0]), float("nan")).view_as(g))
            count["handle"] = handle
        elif "handle" in count:
            count.pop("handle").remove()
        return original(self, batch, model, *a, **k)

    monkeypatch.setattr(Trainer, "_losses", losses)
    with pytest.raises(TrainingDiverged) as e:
        Trainer(cfg, tmp_path / "g", progress=False).run()
    msg = str(e.value)
    assert "a gradient" in msg and "round 1, epoch 1, batch 3" in msg and "\n" not in msg
    assert not (tmp_path / "g" / "model.pt").exists()


def test_outputs_and_load_run_symmetry_expanded(dataset, tmp_path):
    star, gmm, _ = dataset
    cfg = RunConfig.from_dict({
        "latent_dim": 3,
        "encoder": {"kind": "gradient", "options": {"hidden": [16]}},  # sees the orientation
        "decoders": {"f": {"kind": "free", "options": SMALL_MLP}},
        "rounds": [{"decoders": ["f"], "epochs": 1, "batch_size": 16, "high_res_angstrom": 12.0}],
        "data": {"star": str(star), "gmm": str(gmm), "symmetry": "C2"},
    })
    Trainer(cfg, tmp_path / "o", progress=False).run()
    out = tmp_path / "o"
    for name in ("config.json", "environment.json", "checkpoint.pt", "losses.csv", "losses.png", "latent.npy",
                 "model.pt"):
        assert (out / name).is_file(), name
    run = load_run(out)
    assert run.latent.shape == (40, 2, 3) and run.latent.dtype == np.float32
    from gmmplat.io.dataset import ParticleDataset

    ds = ParticleDataset(star, symmetry="C2")
    with torch.no_grad():
        z = run.model.encode(ds.get_batch([6, 7]))
    assert torch.allclose(z, torch.as_tensor(run.latent[3]), atol=1e-5)  # particle 3, copies 0 and 1
    assert not torch.allclose(z[0], z[1])  # the copies are different views of the GMM
    params = run.model.decode(z)
    assert params.shape == (2, run.neutral.n, 5)
    assert json.loads((out / "config.json").read_text())["config"]["data"]["symmetry"] == "C2"
    assert run.losses().shape[0] == 1


def test_config_errors_are_one_line(dataset, tmp_path):
    star, gmm, _ = dataset
    base = two_round_config(star, gmm).to_dict()

    def err(mutate, exc=ConfigError):
        d = json.loads(json.dumps(base))
        mutate(d)
        with pytest.raises(exc) as e:
            Trainer(RunConfig.from_dict(d), tmp_path / "x", progress=False)
        assert "\n" not in str(e.value)
        return str(e.value)

    assert "rounds[1]: high-resolution limit 5 Å is beyond Nyquist (8 Å at 4 Å/px)" in err(
        lambda d: d["rounds"][1].update(high_res_angstrom=5.0))
    assert "rounds[0].epochs" in err(lambda d: d["rounds"][0].update(epochs=0))
    assert "unknown key(s) epoch" in err(lambda d: d["rounds"][0].update(epoch=3))
    assert "missing" in err(lambda d: d["rounds"][1].update(decoders=["core"]))
    assert "unknown decoder 'nope'" in err(lambda d: d["decoders"]["dom"].update(kind="nope"))
    assert "no mask 'zz'" in err(lambda d: d["decoders"]["core"].update(subset="zz"))
    assert "matches no parameter" in err(lambda d: d["rounds"][1].update(freeze=["core.nothing*"]))
    assert "decoders.dom" in err(lambda d: d["decoders"]["dom"]["options"].update(bogus=1))
    assert "rounds[1].decoder_options.core: round option(s) train_transition unknown" in err(
        lambda d: d["rounds"][1].update(decoder_options={"core": {"train_transition": True}}))
    assert "decoder_options: nope is not a decoder" in err(
        lambda d: d["rounds"][1].update(decoder_options={"nope": {}}))
    assert "nothing to train" in err(lambda d: d["rounds"][0].update(train=[], freeze=[]))
    assert not (tmp_path / "x").exists()


def test_train_reuse_if_same_config(dataset, tmp_path, monkeypatch):
    """Notebooks' policy: the same configuration resumes (or reuses a finished run); another replaces it."""
    from gmmplat.train import train

    star, gmm, _ = dataset
    cfg = two_round_config(star, gmm)
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 5)  # in epoch 2, after the checkpoint of epoch 1
    with pytest.raises(Interrupt):
        train(cfg, out, reuse="if-same-config", progress=False)
    monkeypatch.undo()
    resumed = train(cfg, out, reuse="if-same-config", progress=False)  # continues from the checkpoint
    assert len(resumed.history) == 4 and len(json.loads((out / "environment.json").read_text())["resumed"]) == 1
    stamp = (out / "model.pt").stat().st_mtime_ns
    again = train(cfg, out, reuse="if-same-config", progress=False)  # finished: returned as it is
    assert (out / "model.pt").stat().st_mtime_ns == stamp and len(again.history) == 4
    with pytest.raises(ConfigError, match="already holds a run"):
        train(cfg, out, progress=False)  # the default policy refuses
    other = two_round_config(star, gmm, symmetry="C2")
    train(other, out, reuse="if-same-config", progress=False)  # another configuration: a fresh run
    assert json.loads((out / "config.json").read_text())["hash"] == other.hash()
    assert "resumed" not in json.loads((out / "environment.json").read_text())


def test_a_run_written_before_a_config_key_was_added_resumes_and_is_reused(dataset, tmp_path, monkeypatch):
    """A config.json (and checkpoint) written before a key joined the format (here ``refine.cycle_anchors``,
    at its default): --resume continues it to the uninterrupted result, ``holds_same_run`` reuses it, and
    a second interruption before the next checkpoint still resumes; another configuration is still refused."""
    from gmmplat.train.config import config_hash
    from gmmplat.train.loop import holds_same_run

    star, gmm, _ = dataset
    cfg = two_round_config(star, gmm)
    Trainer(cfg, tmp_path / "a", progress=False).run()
    b = tmp_path / "b"
    interrupt_after(monkeypatch, 5)
    with pytest.raises(Interrupt):
        Trainer(cfg, b, progress=False).run()
    monkeypatch.undo()
    record = json.loads((b / "config.json").read_text())
    del record["config"]["refine"]["cycle_anchors"]
    record["hash"] = config_hash(record["config"])
    (b / "config.json").write_text(json.dumps(record))
    ck = torch.load(b / "checkpoint.pt", weights_only=False)
    ck["config_hash"] = record["hash"]
    torch.save(ck, b / "checkpoint.pt")
    assert record["hash"] != cfg.hash() and holds_same_run(b, cfg)

    other = two_round_config(star, gmm)
    other.rounds[1].learning_rate = 5e-4
    assert not holds_same_run(b, other)
    with pytest.raises(ConfigError, match="different configuration"):
        Trainer(other, b, resume=True, progress=False).run()
    interrupt_after(monkeypatch, 1)  # stopped again before the next checkpoint: it still holds the old hash
    with pytest.raises(Interrupt):
        Trainer(cfg, b, resume=True, progress=False).run()
    monkeypatch.undo()
    again = json.loads((b / "config.json").read_text())
    assert again["hash"] == cfg.hash() and again["previous_hashes"] == [record["hash"]]
    Trainer(cfg, b, resume=True, progress=False).run()
    sa, sb = final_state(tmp_path / "a"), final_state(b)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
