"""The run's schedule (gmmplat.train.schedule, gmmplat.train.stages): derived and declared schedules,
their checks, decoder policies between stages, and a new stage kind written outside the package."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_latent_refine import _tiny_config
from test_train_fixtures import make_dataset, one_thread  # noqa: F401

from gmmplat.errors import ConfigError
from gmmplat.model.gmm import GMM
from gmmplat.train import RunConfig, Trainer, load_run
from gmmplat.train.presets import preset
from gmmplat.train.schedule import build_schedule, check_distributed, default_schedule
from gmmplat.train.stages import STAGES, Stage


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("schedule"), n=72, snr=0.5, seed=5)


CYCLES = {"anchors": 6, "high_res_angstrom": 12.0, "cycles": 2, "cycle_epochs": [1], "restart": False,
          "cycle_anchors": 4, "junk_scale": 0.5, "pose_steps": 2}


def _declared(star, gmm, schedule) -> RunConfig:
    d = _tiny_config(star, gmm).to_dict()
    d["schedule"] = schedule
    return RunConfig.from_dict(d)


def test_the_hierarchical_preset_derives_its_cycles_as_stages(small):
    star, gmm, _ = small
    neutral = GMM.load(gmm)
    cfg = RunConfig.from_dict({**_tiny_config(star, gmm).to_dict(), "refine": CYCLES})
    kinds = [s["kind"] for s in default_schedule(cfg)]
    cycle = ["refine_latent", "refine_poses", "principal_axes", "fit_decoders"]
    assert kinds == ["train"] + cycle + ["refine_latent", "principal_axes", "fit_decoders"]
    specs = default_schedule(cfg)
    assert [s["anchors"] for s in specs if s["kind"] == "refine_latent"] == [4, 6]
    assert {s["decoders"] for s in specs if s["kind"] == "fit_decoders"} == {"continue"}
    plain = default_schedule(_tiny_config(star, gmm, {"anchors": 6}))
    assert [s["kind"] for s in plain] == ["train", "refine_latent"] and plain[1]["stretch"] == 1.0
    assert "schedule" not in _tiny_config(star, gmm).to_dict()  # no schedule key: the hash of older runs holds
    assert [s.registry_name for s in build_schedule(cfg)] == kinds
    assert [s["kind"] for s in default_schedule(preset("free", neutral, epochs=1))][:2] == ["train", "train"]
    # pose samples: on the last cycle's refinement only, and only where the poses were refined before it
    posed = default_schedule(RunConfig.from_dict({**cfg.to_dict(), "refine": {**CYCLES, "pose_samples": 9}}))
    assert [s.get("pose_samples", 1) for s in posed if s["kind"] == "refine_latent"] == [1, 9]
    unposed = {**CYCLES, "pose_samples": 9, "pose_steps": 0}
    assert all("pose_samples" not in s for s in default_schedule(RunConfig.from_dict({**cfg.to_dict(), "refine": unposed})))
    assert "pose_samples" not in cfg.to_dict()["refine"]  # the default is left out: older runs' hashes hold
    # the last cycle's decoders: their own epochs, afresh; the earlier cycles' as before
    last = default_schedule(RunConfig.from_dict({**cfg.to_dict(), "refine": {**CYCLES, "last_cycle_epochs": [3],
                                                                              "last_cycle_restart": True}}))
    fits = [(s["epochs"], s["decoders"]) for s in last if s["kind"] == "fit_decoders"]
    assert fits == [(1, "continue"), (3, "rebuild")]
    assert [s for s in last if s["kind"] != "fit_decoders"] == [s for s in specs if s["kind"] != "fit_decoders"]
    assert not {"last_cycle_epochs", "last_cycle_restart"} & set(cfg.to_dict()["refine"])  # older hashes hold
    # pose_cycles: the poses refined only in the cycles just before the last; all of them when fewer
    def posed_cycles(**refine):
        specs = default_schedule(RunConfig.from_dict({**cfg.to_dict(), "refine": {**CYCLES, **refine}}))
        cycle_of = [sum(t["kind"] == "refine_latent" for t in specs[:i + 1]) for i in range(len(specs))]
        return [c for s, c in zip(specs, cycle_of) if s["kind"] == "refine_poses"]

    assert posed_cycles(cycles=4) == [1, 2, 3] and posed_cycles(cycles=4, pose_cycles=1) == [3]
    assert posed_cycles(cycles=4, pose_cycles=2) == [2, 3] and posed_cycles(cycles=3, pose_cycles=5) == [1, 2]
    assert posed_cycles(cycles=3, pose_cycles=1, pose_steps=0) == []
    assert "pose_cycles" not in cfg.to_dict()["refine"]  # the default is left out: older runs' hashes hold
    free = [s["kind"] for s in default_schedule(preset("free", neutral, epochs=1))]
    assert free.count("refine_poses") == 1 and free.index("refine_poses") > free.index("refine_latent", 3)


def test_a_declared_schedule_is_the_run_its_refine_section_derives(small, tmp_path):
    """The same stages written out in the config give the same files, bit for bit."""
    star, gmm, _ = small
    derived = RunConfig.from_dict({**_tiny_config(star, gmm).to_dict(), "refine": CYCLES})
    declared = _declared(star, gmm, default_schedule(derived))
    assert declared.refine.cycles == 0 and declared.hash() != derived.hash()
    for cfg, name in ((derived, "derived"), (declared, "declared")):
        Trainer(cfg, tmp_path / name, progress=False).run()
    for f in ("latent.npy", "latent_cycle.npy", "latent_encoder.npy", "quality.npy", "pose_correction.npy"):
        np.testing.assert_array_equal(np.load(tmp_path / "derived" / f), np.load(tmp_path / "declared" / f))
    a, b = (load_run(tmp_path / n).model.state_dict() for n in ("derived", "declared"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    cycles = json.loads((tmp_path / "declared" / "refine.json").read_text())["cycles"]
    assert [c["cycle"] for c in cycles] == [1, 2] and "pose_median_rotation_deg" in cycles[0]


@pytest.mark.parametrize("schedule, words", [
    ([{"kind": "refine_latent"}], "starts with a train stage"),
    ([{"kind": "train"}, {"kind": "fit_decoders"}], "needs a refinement"),
    ([{"kind": "train"}, {"kind": "bake"}], "unknown stage 'bake'"),
    ([{"kind": "train", "round": 3}], "schedule[0].round: a round index"),
    ([{"kind": "train", "epochs": 3}], "unknown option(s) epochs of a train stage"),
    ([{"kind": "train"}, {"kind": "refine_latent", "anchors": 1}], "schedule[1].anchors: must be >= 2"),
    ([{"kind": "train"}, {"kind": "refine_latent"}, {"kind": "fit_decoders", "decoders": "reset"}],
     "schedule[2].decoders: one of continue, rebuild, freeze"),
    ([{"train": 0}], "schedule[0]: an object with a kind"),
    ([{"kind": "train"}, {"kind": "refine_latent", "pose_samples": 5}], "a refine_poses stage before it"),
    ([{"kind": "train"}, {"kind": "refine_latent", "pose_samples": 0}], "schedule[1].pose_samples: must be >= 1"),
])
def test_bad_schedules_are_named(small, schedule, words):
    star, gmm, _ = small
    with pytest.raises(ConfigError) as err:
        build_schedule(_declared(star, gmm, schedule))
    assert words in str(err.value)


def test_a_declared_schedule_replaces_the_refine_section(small):
    star, gmm, _ = small
    d = {**_tiny_config(star, gmm).to_dict(), "refine": {"anchors": 6}, "schedule": [{"kind": "train"}]}
    with pytest.raises(ConfigError, match="replaces refine.anchors"):
        build_schedule(RunConfig.from_dict(d))


def test_distributed_runs_train_before_the_main_process_stages(small):
    star, gmm, _ = small
    stages = build_schedule(_declared(star, gmm, [{"kind": "train"}, {"kind": "refine_latent"}, {"kind": "train"}]))
    check_distributed(stages, 1)
    with pytest.raises(ConfigError, match="schedule.2.: in a distributed run every train stage comes before"):
        check_distributed(stages, 2)


@pytest.mark.parametrize("policy", ["continue", "rebuild", "freeze"])
def test_decoder_policies_between_stages(small, tmp_path, policy):
    """``rebuild`` starts from fresh weights, ``continue`` from the trained ones (so the two differ);
    ``freeze`` keeps the decoder as trained, and a stage left with nothing to train says so."""
    star, gmm, _ = small
    base = [{"kind": "train"}, {"kind": "refine_latent", "anchors": 4, "high_res_angstrom": 12.0}]
    fit = {"kind": "fit_decoders", "epochs": 1, "decoders": policy}
    if policy == "freeze":
        with pytest.raises(ConfigError, match=r"schedule\[2\]: nothing to train .every decoder of the round is frozen"):
            Trainer(_declared(star, gmm, base + [fit]), tmp_path / policy, progress=False).run()
        return
    Trainer(_declared(star, gmm, base + [fit]), tmp_path / policy, progress=False).run()
    other = "rebuild" if policy == "continue" else "continue"
    Trainer(_declared(star, gmm, base + [{**fit, "decoders": other}]), tmp_path / other, progress=False).run()
    a, b = (load_run(tmp_path / n).model.decoder.state_dict() for n in (policy, other))
    assert not all(torch.equal(a[k], b[k]) for k in a)


@STAGES.register("scale_latent_for_test")
class ScaleLatent(Stage):
    """A stage kind written outside the package (docs/extending.md): multiplies the latent by ``factor``."""

    options = {"factor": 2.0}
    needs_refinement = True

    def run(self, state, resume=None):
        latent, label = state.current_latent()
        state.latent, state.latent_label = latent * float(self.spec["factor"]), label


def test_a_new_stage_kind_runs_in_a_schedule(small, tmp_path):
    star, gmm, _ = small
    stages = [{"kind": "train"}, {"kind": "refine_latent", "anchors": 4, "high_res_angstrom": 12.0},
              {"kind": "scale_latent_for_test", "factor": 3.0}, {"kind": "fit_decoders", "epochs": 1}]
    Trainer(_declared(star, gmm, stages), tmp_path / "run", progress=False).run()
    Trainer(_declared(star, gmm, stages[:2] + stages[3:]), tmp_path / "plain", progress=False).run()
    z, plain = np.load(tmp_path / "run" / "latent.npy"), np.load(tmp_path / "plain" / "latent.npy")
    assert json.loads((tmp_path / "run" / "refine.json").read_text())["latent_npy"] == "cycle"
    np.testing.assert_array_equal(z, 3.0 * plain)  # the decoders trained on the scaled refinement
    a, b = (load_run(tmp_path / n).model.decoder.state_dict() for n in ("run", "plain"))
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_a_config_that_names_only_steps_is_the_hierarchical_preset(small):
    """The steps' defaults are the presets' tuned values: a hand-written configuration that names the
    steps, bands, epochs, learning rates and the refinement, but none of the steps' options, is the
    preset (the same hash: the same run)."""
    star, gmm, _ = small
    neutral = GMM.load(gmm)
    low = max(10.0, 2 * neutral.pixel_size_angstrom)
    hand = {
        "latent_noise_std": 0.05, "latent_penalty": 0.01,
        "encoder": {"kind": "gradient", "options": {"input_res_angstrom": low}},
        "decoders": {"hier": {"kind": "hierarchical"}},
        "rounds": [
            {"name": "small GMM, low resolution", "decoders": ["hier"], "epochs": 20, "learning_rate": 3e-3,
             "high_res_angstrom": low, "loss": {"kind": "weighted_l2"}},
            {"name": "transition, full resolution", "decoders": ["hier"], "epochs": 5, "learning_rate": 2e-4,
             "decoder_options": {"hier": {"train_transition": True}}, "loss": {"kind": "weighted_l2"}}],
        "refine": {"anchors": 24, "cycles": 3, "cycle_stretch": 1.5, "cycle_epochs": [7, 2], "restart": False,
                   "cycle_anchors": 12, "junk_scale": 0.5, "pose_steps": 20, "pose_samples": 9,
                   "last_cycle_epochs": [14, 2], "last_cycle_restart": True},
    }
    assert RunConfig.from_dict(hand).hash() == preset("hierarchical", neutral).hash()


def test_a_config_file_can_start_from_a_preset(small, tmp_path, capsys):
    from gmmplat import cli

    star, gmm, _ = small
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"preset": "hierarchical", "refine": {"pose_steps": 0},
                                "rounds": [{"epochs": 3}, {"epochs": 1, "learning_rate": 1e-4}]}))
    assert cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--config", str(path), "--print-config"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    ref = preset("hierarchical", GMM.load(gmm)).to_dict()
    assert cfg["refine"] == {**ref["refine"], "pose_steps": 0}
    assert [r["epochs"] for r in cfg["rounds"]] == [3, 1] and cfg["rounds"][1]["learning_rate"] == 1e-4
    assert cfg["rounds"][0]["high_res_angstrom"] == ref["rounds"][0]["high_res_angstrom"]
    path.write_text(json.dumps({"preset": "hierarchical", "refine": {"pose_stepz": 0}}))
    assert cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--config", str(path), "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "mine.json" in err and "pose_stepz" in err and len(err.strip().splitlines()) == 1
