"""The cost model (gmmplat.train.cost) and ``gmmplat train --estimate``."""
import numpy as np
import pytest
from test_train_fixtures import make_dataset

from gmmplat import cli
from gmmplat.model.gmm import GMM
from gmmplat.train import RunConfig, preset
from gmmplat.train.cost import (COEFFICIENTS_PATH, estimate_run, features, fit_coefficients, load_coefficients,
                                refine_features, refined_items, speedup)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cost")
    star, gmm, _ = make_dataset(folder, n=40, n_gaussians=30)
    return folder, star, gmm


def test_stored_coefficients_are_complete_and_non_negative():
    co = load_coefficients(COEFFICIENTS_PATH)
    cpu = co["devices"]["cpu"]
    for kind, n in (("train", 3), ("encoder", 3), ("validation", 4), ("refine", 3)):
        assert len(cpu[kind]) == n and min(cpu[kind]) >= 0
    assert cpu["fixed_s"] >= 0 and 0 <= cpu["parallel_fraction"] <= 1 and min(co["memory_mb"]) >= 0


def test_fit_recovers_the_coefficients_it_was_made_from():
    truth = {"train": [1e-3, 2e-9, 1e-8], "encoder": [5e-4, 3e-9, 0.0], "validation": [2e-4, 1e-9, 1e-9, 1e-9],
             "refine": [0.5, 5e-10, 2e-8]}
    rows = []
    for n in (200, 2000, 8000):
        for box, cells, enc in ((64, 91, 91), (128, 1000, 300), (256, 16000, 1200)):
            r = {"gaussians": n, "box": box, "cells": cells, "encoder_cells": enc, "refine_anchors": 24,
                 "batch": 32, "pixel_size_angstrom": 1.0, "band_angstrom": 10.0, "peak_rss_mb": 500.0 + n / 100}
            f = {k: float(np.dot(v, features(k, n, box, cells, enc))) for k, v in truth.items() if k != "refine"}
            calls = [{"n": m, "seconds": float(np.dot(truth["refine"], refine_features(m, 24, n, box, cells)))}
                     for m in (64, 192)]
            r.update(encoder_s=f["encoder"], train_s=f["train"] + f["encoder"], validation_s=f["validation"],
                     refine_calls=calls)
            rows.append(r)
    fit = fit_coefficients(rows)
    for kind, coef in truth.items():
        assert np.allclose(fit[kind], coef, rtol=1e-3, atol=1e-12), kind


def test_predictions_grow_with_the_problem_and_shrink_with_threads(data):
    _, _, gmm = data
    neutral = GMM.load(gmm)
    cfg = preset("free", neutral)
    base = dict(n_particles=10_000, n_gaussians=2000, box=128, pixel_size_angstrom=1.0)
    ref = estimate_run(cfg, **base)
    assert ref.seconds > 0 and ref.peak_rss_mb > 0
    for key, value in (("n_particles", 40_000), ("n_gaussians", 8000), ("box", 256)):
        bigger = estimate_run(cfg, **{**base, key: value})
        assert bigger.seconds > ref.seconds, key
    assert estimate_run(cfg, **base, n_sym=4).seconds > 3 * ref.seconds
    assert estimate_run(cfg, **base, threads=2).seconds < ref.seconds
    assert speedup(1, 0.8) == 1.0 and speedup(2, 0.8) == pytest.approx(1 / 0.6)
    assert estimate_run(cfg, **base, device="cuda").seconds is None  # not measured: no guess
    # the pose refinements counted are those the schedule runs (free: one, in its second cycle)
    every = RunConfig.from_dict({**cfg.to_dict(), "refine": {**cfg.to_dict()["refine"], "pose_cycles": None}})
    assert estimate_run(every, **base).parts["poses"] == pytest.approx(2 * ref.parts["poses"])
    # the refinement projects the noise subset first: at most 1000 items more
    assert [refined_items(n) for n in (10, 1000, 5000)] == [20, 2000, 6000]


def test_train_estimate_prints_and_writes_nothing(data, capsys):
    folder, star, gmm = data
    out = folder / "run"
    code = cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--preset", "free", "--out", str(out),
                     "--estimate", "--symmetry", "C4", "--threads", "2"])
    text = capsys.readouterr().out
    assert code == 0
    assert "40 particles x 4 symmetry copies" in text and "wall time" in text and "peak memory" in text
    assert "measured on samples of up to 40 particles" in text and text.count("wall time") == 2
    assert not out.exists()
    assert cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--preset", "free", "--estimate",
                     "--estimate-sample", "0"]) == 0
    assert capsys.readouterr().out.count("wall time") == 1  # the cost model only


def test_the_trial_schedule_is_the_first_cycle_at_one_epoch(data):
    from gmmplat.train.calibrate import trial_schedule

    _, _, gmm = data
    full, trial = trial_schedule(preset("hierarchical", GMM.load(gmm)))
    assert [s["kind"] for s in trial] == ["train", "train", "refine_latent", "refine_poses", "principal_axes",
                                          "fit_decoders", "fit_decoders"]
    assert all(s["epochs"] == 1 for s in trial if s["kind"] == "fit_decoders")
    assert len(full) > len(trial) and full[:len(trial) - 2] == trial[:-2]
    # the free preset refines the poses in its second cycle only: the trial times them after its first refinement
    _, trial = trial_schedule(preset("free", GMM.load(gmm)))
    assert [s["kind"] for s in trial] == ["train", "train", "refine_latent", "refine_poses", "principal_axes",
                                          "fit_decoders"]
