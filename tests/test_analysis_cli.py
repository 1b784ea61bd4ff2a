"""The analyze, morph and evaluate commands on a run folder whose decoder is set by hand.

The run is a real ``model.pt`` (``gmmplat.train`` save/load) of the rigid preset on
a GMM of the hinge sample molecule; the rigid decoder's MLP is set so that latent
coordinate z0 turns the domain by 15°·z0 about the sample's hinge (to first order),
and the latent of each particle is its truth t (plus an unrelated noise column).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.cluster.vq import kmeans2

from gmmplat.errors import ConfigError, InputError
from gmmplat.io.models import read_model, write_models
from gmmplat.io.mrc import read_map, write_map
from gmmplat.io.star import TABLE_COLUMNS, write_particle_star
from gmmplat.model.gmm import GMM
from gmmplat.synthetic.motions import get_motion

from factories import set_rigid_mlp

CENTRE = np.array([100.0, 110.0, 90.0])
BOX, APIX, N_PARTICLES, MAX_DEG = 64, 2.0, 150, 15.0


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from gmmplat.train.builder import build_model_for_round
    from gmmplat.train.config import DataConfig
    from gmmplat.train.outputs import save_model
    from gmmplat.train.presets import preset

    root = tmp_path_factory.mktemp("cli")
    motion = get_motion("hinge")
    motion.model.to_structure(motion.model.xyz + CENTRE, name="hinge").write_pdb(str(root / "neutral_model.pdb"))
    model = read_model(root / "neutral_model.pdb")
    frame_t = np.linspace(-1, 1, 11)
    write_models(root / "truth_frames.pdb", model, motion.coordinates_batch(frame_t) + CENTRE)
    g = np.random.default_rng(0)
    t = g.uniform(-1, 1, N_PARTICLES)
    frame = np.rint((t + 1) / 2 * 10).astype(int)
    pd.DataFrame({"particle_index": np.arange(N_PARTICLES), "t": t, "frame": frame}).to_csv(root / "truth.csv", index=False)
    table = pd.DataFrame({c: 0.0 for c in TABLE_COLUMNS}, index=range(N_PARTICLES))
    table = table.assign(stack_path=str(root / "stack.mrcs"), image_index=np.arange(N_PARTICLES), defocus_u_angstrom=1e4,
                         defocus_v_angstrom=1e4, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1,
                         pixel_size_angstrom=APIX, box_size=BOX, optics_group=1)
    write_particle_star(root / "particles.star", table)
    write_map(root / "consensus_map.mrc", np.zeros((BOX,) * 3, np.float32), APIX, CENTRE - BOX // 2 * APIX)

    x0 = motion.neutral
    n_g = int(motion.model.ca_mask.sum()) // 2
    centres, label = kmeans2(x0, n_g, seed=1, minit="++")
    keep = np.bincount(label, minlength=n_g) > 0
    dom = np.array([motion.masks["moving_domain"][label == k].mean() > 0.5 for k in range(n_g) if keep[k]])
    neutral = GMM.from_arrays(centres[keep], 1.0, 3.0, BOX, APIX, box_centre_world_angstrom=CENTRE,
                              extras={"mask__moving_domain": dom})
    neutral.save(root / "gmm.npz")
    config = preset("rigid", neutral, domain="moving_domain", latent_dim=2)
    config.data = DataConfig(str(root / "particles.star"), str(root / "gmm.npz"), "C1", False)
    hetero, _, decoders, _, _ = build_model_for_round(config, neutral, 0)
    set_rigid_mlp(decoders["domain"], motion, MAX_DEG)
    run = root / "run"
    run.mkdir()
    save_model(run / "model.pt", config, hetero, neutral, str(root / "gmm.npz"), 0)
    latent = np.stack([t, 0.3 * g.normal(size=N_PARTICLES)], 1).astype(np.float32)
    np.save(run / "latent.npy", latent)
    return root


def _args(module, argv):
    p = argparse.ArgumentParser()
    module.add_arguments(p)
    return p.parse_args(argv)


def test_analyze_writes_everything(run_dir, capsys):
    from gmmplat.commands import analyze

    out = run_dir / "analysis"
    args = _args(analyze, ["--run", str(run_dir / "run"), "--pcs", "2", "--frames", "4", "--out", str(out),
                           "--model", str(run_dir / "neutral_model.pdb"), "--map", str(run_dir / "consensus_map.mrc"),
                           "--truth", str(run_dir / "truth.csv"), "--states", "3"])
    assert analyze.run(args) == 0
    assert "2 trajectories x 4 frames" in capsys.readouterr().out
    traj = np.load(out / "trajectories.npy")
    assert traj.shape == (2, 4, 2)
    for name in ("pca.json", "latent_pca.png", "pc_histograms.png", "trajectories.csv", "kmeans.npz",
                 "displacement_pc1.png", "per_residue_pc1.png", "models/pc1.pdb", "models/pc1.cif",
                 "models/pc2_per_residue.csv", "rigid_pc1_moving_domain.csv", "rigid_pc1_moving_domain.png"):
        assert (out / name).is_file(), name
    m = read_map(out / "maps" / "pc1_frame03.mrc")
    np.testing.assert_allclose(m.origin_angstrom, CENTRE - BOX // 2 * APIX)
    assert m.data.max() > 0.5
    # PC1 follows z0 = t: the domain turns by 15°·z0 along it, from one end to the other
    rep = pd.read_csv(out / "rigid_pc1_moving_domain.csv")
    z0 = traj[0, :, 0]
    np.testing.assert_allclose(np.abs(rep["angle_deg"]), MAX_DEG * np.abs(z0), atol=0.3)
    assert rep["angle_deg"].iloc[0] * rep["angle_deg"].iloc[-1] < 0
    disp = pd.read_csv(out / "models" / "pc1_displacement.csv")
    assert disp["displacement_angstrom"].max() > 5.0


def test_morph_command(run_dir, tmp_path, capsys):
    from gmmplat.analysis.evaluate import read_model_frames
    from gmmplat.commands import morph

    out = tmp_path / "pc1.pdb"
    assert morph.run(_args(morph, ["--run", str(run_dir / "run"), "--model", str(run_dir / "neutral_model.pdb"),
                                   "--out", str(out), "--frames", "5"])) == 0
    frames = read_model_frames(out)
    assert frames.shape[0] == 5 and (tmp_path / "pc1.cif").is_file()
    assert morph.run(_args(morph, ["--run", str(run_dir / "run"), "--model", str(run_dir / "neutral_model.pdb"),
                                   "--out", str(tmp_path / "z.cif"), "--z", "0,0; 1,0", "--morph-reference", "neutral"])) == 0
    two = read_model_frames(tmp_path / "z.cif")
    neutral = read_model(run_dir / "neutral_model.pdb").xyz_angstrom
    np.testing.assert_allclose(two[0], neutral, atol=2e-3)  # z = 0: the rigid decoder does nothing
    truth = read_model_frames(run_dir / "truth_frames.pdb")[-1]  # t = 1
    assert np.sqrt(np.mean(np.sum((two[1] - truth) ** 2, 1))) < 0.5
    # default reference: the fitted model stands for the median particle, so z = median returns it
    from gmmplat.analysis.morph_reference import reference_latent

    median = reference_latent(np.load(run_dir / "run" / "latent.npy"))
    assert morph.run(_args(morph, ["--run", str(run_dir / "run"), "--model", str(run_dir / "neutral_model.pdb"),
                                   "--out", str(tmp_path / "m.pdb"), "--z", ",".join(f"{v:.8f}" for v in median)])) == 0
    np.testing.assert_allclose(read_model_frames(tmp_path / "m.pdb")[0], neutral, atol=2e-3)
    with pytest.raises(ConfigError, match="has 3 values, the latent space 2"):
        morph.run(_args(morph, ["--run", str(run_dir / "run"), "--model", str(run_dir / "neutral_model.pdb"),
                                "--out", str(tmp_path / "y.pdb"), "--z", "1,2,3"]))


def test_evaluate_command(run_dir, tmp_path):
    from gmmplat.commands import evaluate

    out = tmp_path / "scores.json"
    assert evaluate.run(_args(evaluate, ["--run", str(run_dir / "run"), "--truth", str(run_dir / "truth.csv"),
                                         "--truth-frames", str(run_dir / "truth_frames.pdb"),
                                         "--model", str(run_dir / "neutral_model.pdb"), "--out", str(out)])) == 0
    s = json.loads(out.read_text())
    assert s["spearman_abs"] > 0.99 and s["knn_r2"] > 0.9
    assert s["mean_frame_rmsd_angstrom"] < 0.5 < s["mean_neutral_rmsd_angstrom"]
    assert len(s["frame_rmsd"]) == 11
    assert s["amplitude_ratio"] == pytest.approx(1.0, abs=0.1)  # the decoder turns the domain by the true angle
    assert len(s["per_residue"]) == 186

    shuffled = np.load(run_dir / "run" / "latent.npy")[np.random.default_rng(1).permutation(N_PARTICLES)]
    np.save(tmp_path / "shuffled.npy", shuffled)
    evaluate.run(_args(evaluate, ["--run", str(run_dir / "run"), "--truth", str(run_dir / "truth.csv"),
                                  "--latent", str(tmp_path / "shuffled.npy"), "--out", str(out), "--overwrite"]))
    assert json.loads(out.read_text())["spearman_abs"] < 0.25

    np.save(tmp_path / "short.npy", shuffled[:-1])
    with pytest.raises(InputError, match=r"short.npy: latent has 149 rows but .*particles.star has 150 particles"):
        evaluate.run(_args(evaluate, ["--run", str(run_dir / "run"), "--truth", str(run_dir / "truth.csv"),
                                      "--latent", str(tmp_path / "short.npy")]))
    pd.read_csv(run_dir / "truth.csv").iloc[:-1].to_csv(tmp_path / "truth_short.csv", index=False)
    with pytest.raises(InputError, match=r"latent has 150 rows but .*truth_short.csv has 149 particles"):
        evaluate.run(_args(evaluate, ["--run", str(run_dir / "run"), "--truth", str(tmp_path / "truth_short.csv")]))
