"""The exact-likelihood oracle, the amplitude ratio and ``gmmplat evaluate --oracle`` on tiny simulated data."""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, spearmanr

from gmmplat.analysis.amplitude import amplitude_ratio, displacement_ratios, per_residue_table
from gmmplat.analysis.evaluate import read_model_frames
from gmmplat.analysis.oracle import frame_prior, load_simulated_dataset, oracle_scores, run_oracle
from gmmplat.errors import InputError
from gmmplat.synthetic.motions import get_motion
from gmmplat.synthetic.simulate import simulate_dataset

from factories import set_rigid_mlp

TINY = dict(n_particles=60, box=32, pixel_size_angstrom=4.0, images_per_stack=30, n_consensus=3, progress=False)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("oracle")
    out = {}
    for name, snr in (("high", 5.0), ("low", 0.002)):
        simulate_dataset("hinge", root / name, snr=snr, seed=1, **TINY)  # seed 1: median t = -0.005
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def oracles(datasets):
    out = {}
    for name, path in datasets.items():
        ds = load_simulated_dataset(path)
        out[name] = (ds, run_oracle(ds, n_particles=None))
    return out


def _direct_log_likelihood(folder, row):
    """log p(image | frame k) for every frame, by a direct numpy rendering (no package renderer)."""
    from gmmplat.io.models import read_model
    from gmmplat.io.stacks import StackReader
    from gmmplat.io.star import read_particle_star
    from gmmplat.physics.ctf import CTFParams, ctf_rfft

    meta = json.loads((folder / "metadata.json").read_text())
    opts = meta["options"]
    M, apix, s = opts["box"], opts["pixel_size_angstrom"], opts["sigma_angstrom"]
    star = read_particle_star(folder / "particles.star")
    tab = star.table.iloc[row]
    y = StackReader(star)[[row]][0].astype(np.float64)
    rot, tilt, psi = np.radians([tab.rot_deg, tab.tilt_deg, tab.psi_deg])

    def rz(a):
        return np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])

    def ry(a):
        return np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])

    A = rz(psi) @ ry(tilt) @ rz(rot)  # RELION's Euler matrix (docs/conventions.md)
    electrons = {"C": 6.0, "N": 7.0, "O": 8.0, "S": 16.0}
    amp = np.array([electrons[e] for e in read_model(folder / "neutral_model.pdb").element])
    grid = (np.arange(M) - M // 2) * apix
    ctf = ctf_rfft(CTFParams.from_table(star.table, [row]), M, apix)[0].numpy()
    out = []
    for xyz in read_model_frames(folder / "truth_frames.pdb") - np.asarray(meta["box_centre_world_angstrom"]):
        p = xyz @ A[:2].T - np.array([tab.shift_x_angstrom, tab.shift_y_angstrom])
        d2 = (grid[None, None, :] - p[:, 0, None, None]) ** 2 + (grid[None, :, None] - p[:, 1, None, None]) ** 2
        img = np.einsum("n,nyx->yx", amp * math.sqrt(2 * math.pi) * s, np.exp(-d2 / (2 * s * s)))
        x = np.fft.irfft2(np.fft.rfft2(img) * ctf, s=(M, M))
        out.append(norm.logpdf(y, loc=x, scale=meta["noise_std"]).sum())
    return np.array(out)


def test_log_likelihood_is_exact(datasets, oracles):
    ds, res = oracles["low"]
    row = 7
    direct = _direct_log_likelihood(datasets["low"], row)
    np.testing.assert_allclose(res.log_likelihood[row], direct, rtol=1e-9, atol=1e-6)
    # the posterior is the likelihood times the prior (end frames half as likely), normalised
    p = np.exp(direct - direct.max()) * frame_prior(ds.frame_t)
    np.testing.assert_allclose(res.posterior[row], p / p.sum(), atol=1e-9)


def test_frame_prior_is_the_share_of_uniform_t():
    np.testing.assert_allclose(frame_prior(np.linspace(-1, 1, 5)), [1 / 8, 1 / 4, 1 / 4, 1 / 4, 1 / 8])


def test_oracle_recovers_t_at_high_snr_and_degrades_at_low(oracles):
    ds, high = oracles["high"]
    assert np.mean(high.map_frame == high.frame) > 0.8  # the misses lie midway between two frames
    err = np.abs(high.t_mean - high.t_true)
    assert err.mean() < 0.06 and err.max() < 0.3  # frames are 0.2 apart
    s_high = oracle_scores(ds, high, k=5)
    assert s_high["spearman_abs"] > 0.98 and s_high["mean_frame_rmsd_angstrom"] < 0.25
    assert s_high["amplitude_ratio"] == pytest.approx(1.0, abs=0.05)
    ds_low, low = oracles["low"]
    s_low = oracle_scores(ds_low, low, k=5)
    assert s_low["spearman_abs"] < s_high["spearman_abs"] - 0.2
    assert s_low["mean_posterior_entropy"] > s_high["mean_posterior_entropy"] + 0.5
    assert s_low["mean_frame_rmsd_angstrom"] > 3 * s_high["mean_frame_rmsd_angstrom"]


def test_noise_free_dataset_is_refused(tmp_path):
    simulate_dataset("hinge", tmp_path / "clean", snr=math.inf, seed=0, **{**TINY, "n_particles": 4})
    with pytest.raises(InputError, match="noise-free"):
        load_simulated_dataset(tmp_path / "clean")


@pytest.fixture(scope="module")
def hinge_frames():
    motion = get_motion("hinge")
    ca = motion.model.ca_mask
    return motion.coordinates_batch(np.linspace(-1, 1, 11))[:, ca], motion.masks["moving_domain"][ca]


def test_amplitude_ratio_one_for_truth_half_for_half(hinge_frames):
    true, domain = hinge_frames
    ref = 5
    assert amplitude_ratio(true, true, ref) == pytest.approx(1.0)
    half = true[ref] + 0.5 * (true - true[ref])
    assert amplitude_ratio(half, true, ref) == pytest.approx(0.5)
    assert amplitude_ratio(np.broadcast_to(true[ref], true.shape), true, ref) == pytest.approx(0.0)
    # an offset of the whole decoded model changes nothing (displacements are from the reference frame)
    assert amplitude_ratio(half + 3.0, true, ref, mask=domain) == pytest.approx(0.5)
    # a motion at right angles to the truth has no component along it
    sideways = true[ref] + np.cross(true - true[ref], [0.0, 0.0, 1.0])
    assert abs(amplitude_ratio(sideways, true, ref, mask=domain)) < 0.05
    r = displacement_ratios(true, true, ref)
    assert np.isnan(r[ref]).all() and np.isnan(r[:, ~domain]).all()  # the core does not move


def test_per_residue_table(hinge_frames):
    from gmmplat.synthetic.motions import get_motion

    true, domain = hinge_frames

    class Ca:  # the columns per_residue_table reads
        m = get_motion("hinge").model
        chain_id, residue_number = m.chain_id[m.ca_mask], m.res_seq[m.ca_mask]
        residue_name = np.array(["ALA"] * int(m.ca_mask.sum()))

    half = true[5] + 0.5 * (true - true[5])
    tab = per_residue_table(Ca, half, true, true[5], 5)
    assert len(tab) == len(true[0])
    moving = tab["amplitude_ratio"].notna().to_numpy()
    assert np.all(domain[moving]) and moving.sum() > 0.9 * domain.sum()  # only the pivot's neighbours move little
    np.testing.assert_allclose(tab.loc[moving, "amplitude_ratio"], 0.5, atol=1e-9)
    # the halved motion is half as far from the truth as the neutral model
    np.testing.assert_allclose(tab.loc[domain, "rmsd_angstrom"], 0.5 * tab.loc[domain, "neutral_rmsd_angstrom"],
                               rtol=1e-9)
    assert tab.loc[~domain, "rmsd_angstrom"].max() < 1e-9


def _run_on(dataset, gain, name, offset_deg=0.0):
    """A rigid-preset run folder on ``dataset`` whose decoder turns the domain by gain·15°·z0 (plus a constant
    turn of ``offset_deg`` about x); latent z = (t, noise)."""
    from scipy.cluster.vq import kmeans2

    from gmmplat.model.gmm import GMM
    from gmmplat.train.builder import build_model_for_round
    from gmmplat.train.config import DataConfig
    from gmmplat.train.outputs import save_model
    from gmmplat.train.presets import preset

    meta = json.loads((dataset / "metadata.json").read_text())
    motion = get_motion("hinge")
    x0 = motion.neutral[motion.model.ca_mask]
    n_g = len(x0) // 2
    centres, label = kmeans2(x0, n_g, seed=1, minit="++")
    dom_atoms = motion.masks["moving_domain"][motion.model.ca_mask]
    keep = np.bincount(label, minlength=n_g) > 0
    dom = np.array([dom_atoms[label == k].mean() > 0.5 for k in range(n_g) if keep[k]])
    neutral = GMM.from_arrays(centres[keep], 1.0, 3.0, TINY["box"], TINY["pixel_size_angstrom"],
                              box_centre_world_angstrom=np.asarray(meta["box_centre_world_angstrom"]),
                              extras={"mask__moving_domain": dom})
    neutral.save(dataset / f"{name}_gmm.npz")
    config = preset("rigid", neutral, domain="moving_domain", latent_dim=2)
    config.data = DataConfig(str(dataset / "particles.star"), str(dataset / f"{name}_gmm.npz"), "C1", False)
    hetero, _, decoders, _, _ = build_model_for_round(config, neutral, 0)
    set_rigid_mlp(decoders["domain"], motion, 15.0, gain)
    if offset_deg:
        import torch

        last = [m for m in decoders["domain"].mlp if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.bias[0] = math.radians(offset_deg) / float(decoders["domain"].scales[0])
    run = dataset / name
    run.mkdir()
    save_model(run / "model.pt", config, hetero, neutral, str(dataset / f"{name}_gmm.npz"), 0)
    t = pd.read_csv(dataset / "truth.csv")["t"].to_numpy()
    z = np.stack([t, 0.3 * np.random.default_rng(0).normal(size=len(t))], 1).astype(np.float32)
    np.save(run / "latent.npy", z)
    return run


def test_evaluate_oracle_command(datasets, capsys):
    from gmmplat.commands import evaluate

    data = datasets["low"]
    full, half = _run_on(data, 1.0, "full"), _run_on(data, 0.5, "half")
    p = argparse.ArgumentParser()
    evaluate.add_arguments(p)
    args = p.parse_args(["--oracle", str(data), "--run", str(full), "--run", str(half), "--oracle-particles", "40",
                         "--k", "5", "--overwrite"])  # the reruns below replace the scores
    assert evaluate.run(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("oracle on 40 of 60 particles") and "full: |Spearman|" in out and "of the way" in out
    oracle = json.loads((data / "oracle.json").read_text())
    assert len(oracle["rows"]) == 40 and oracle["oracle"]["n_particles"] == 40
    s_full = json.loads((full / "scores.json").read_text())
    s_half = json.loads((half / "scores.json").read_text())
    assert s_full["amplitude_ratio_moving_domain"] == pytest.approx(1.0, abs=0.1)
    assert s_half["amplitude_ratio_moving_domain"] == pytest.approx(0.5, abs=0.1)
    # the latent is the true t: better than the oracle at this SNR (fraction above 1), and the
    # true-size motion is closer to the truth than the halved one
    comp = s_full["oracle_comparison"]
    assert comp["spearman_abs"]["fraction"] > 1.0
    assert comp["mean_frame_rmsd_angstrom"]["fraction"] > s_half["oracle_comparison"]["mean_frame_rmsd_angstrom"][
        "fraction"]
    table = pd.read_csv(full / "per_residue_rmsd.csv")
    assert len(table) == 186 and (full / "per_residue_rmsd.png").stat().st_size > 1000
    # the oracle is cached for the same subset, recomputed for another
    stamp = (data / "oracle.json").stat().st_mtime_ns
    assert evaluate.run(args) == 0 and (data / "oracle.json").stat().st_mtime_ns == stamp
    args.oracle_particles = 30
    assert evaluate.run(args) == 0 and len(json.loads((data / "oracle.json").read_text())["rows"]) == 30


def test_morph_reference_removes_a_constant_decoded_offset(datasets):
    """The model is the median particle's state (t = 0 in this dataset): morphing by the decoded
    motion from the latent median removes a constant decoded turn the neutral-GMM offsets carry."""
    from gmmplat.analysis.morph_reference import reference_latent, run_morpher
    from gmmplat.analysis.runs import load_analysis_run, score_run
    from gmmplat.io.models import read_model

    data = datasets["high"]
    ar = load_analysis_run(_run_on(data, 1.0, "offset", offset_deg=10.0))
    ca = read_model(data / "neutral_model.pdb", selection="ca")
    z_ref = reference_latent(ar.latent)
    at_ref = run_morpher(ar, ca, "median").morph(ar.decode_fn, z_ref)[0]
    np.testing.assert_allclose(at_ref, ca.xyz_angstrom, atol=1e-3)  # the model itself at the reference point
    offset = run_morpher(ar, ca, "neutral").morph(ar.decode_fn, z_ref)[0]
    assert np.sqrt(np.mean(np.sum((offset - ca.xyz_angstrom) ** 2, 1))) > 0.5  # the 10° turn lands on the model
    files = [data / n for n in ("truth.csv", "truth_frames.pdb", "neutral_model.pdb")]
    median = score_run(ar, *files, k=5)
    neutral = score_run(ar, *files, k=5, morph_reference="neutral")
    assert median["mean_frame_rmsd_angstrom"] < 0.5 * neutral["mean_frame_rmsd_angstrom"]


def test_evaluate_bad_inputs_are_one_line_errors(tmp_path):
    from gmmplat.commands import evaluate
    from gmmplat.errors import ConfigError

    from factories import assert_one_line_error

    p = argparse.ArgumentParser()
    evaluate.add_arguments(p)
    with pytest.raises(InputError) as e:
        evaluate.run(p.parse_args(["--oracle", str(tmp_path)]))
    assert_one_line_error(e, tmp_path / "metadata.json", "simulated dataset")
    with pytest.raises(ConfigError, match="one --run and --truth"):
        evaluate.run(p.parse_args(["--run", str(tmp_path)]))
    with pytest.raises(ConfigError, match="drop --truth"):
        evaluate.run(p.parse_args(["--oracle", str(tmp_path), "--truth", "t.csv"]))
