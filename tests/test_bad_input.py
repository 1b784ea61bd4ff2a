"""Hostile input through the real command line (``gmmplat.cli.main``, in process).

Every case asserts: exit code 2; exactly one stderr line ``gmmplat VERB: error: ...``
naming the file or option, no traceback; no output that blocks the corrected rerun
(nothing new in the output places, or for ``train`` a folder without ``checkpoint.pt``);
no stale or partial results (files that existed before are unchanged, no temporary
folders left).  Below the table: the corrected reruns themselves, the internal-error
path (exit 3 + error.log), negative values, ``--print-config`` without ``--out``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import assert_cli_error
from test_analysis_cli import CENTRE, N_PARTICLES, run_dir  # noqa: F401 (module fixture: a finished run, box 64)
from test_build_cli import files  # noqa: F401 (module fixture: bundle map + models, box 32)
from test_io_cryosparc import FIXTURE, make_cs
from test_train_fixtures import make_dataset, one_thread, overwrite_images  # noqa: F401

from gmmplat import cli

pytestmark = pytest.mark.filterwarnings("ignore:Data array contains NaN:RuntimeWarning")  # writing the test stacks

TRAIN_FAST = ["--preset", "rigid", "--domain", "domain", "--epochs", "1", "--batch-size", "8", "--no-progress"]


# ------------------------------------------------------------------ shared inputs
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Particles (24, box 24 at 4 Å/px) + GMM for train; a run whose GMM records its model."""
    folder = tmp_path_factory.mktemp("bad_input")
    make_dataset(folder / "particles", n=24)
    return folder


@pytest.fixture(scope="module")
def rec_run(run_dir):  # noqa: F811
    """The analysis run, its neutral GMM marked as built from ``neutral_model.pdb`` (selection ca)."""
    import torch

    from gmmplat.neutral.pipeline import model_record
    from gmmplat.io.models import read_model

    model_path = run_dir / "neutral_model.pdb"
    rec = run_dir / "run_rec"
    if not rec.exists():
        rec.mkdir()
        payload = torch.load(run_dir / "run" / "model.pt", weights_only=False)
        extras = payload["neutral"]["extras"]
        extras.update(model_record(model_path, "ca"))
        extras["atom_to_gaussian"] = np.full(read_model(model_path).n_atoms_total, -1, np.int64)
        torch.save(payload, rec / "model.pt")
        shutil.copy(run_dir / "run" / "latent.npy", rec / "latent.npy")
    return rec


def fixture_with_header_voxel(folder: Path, voxel: float) -> Path:
    """The fixture's STAR file (1.5 Å/px) in ``folder`` beside a copy of its stack whose header voxel
    size is ``voxel`` (1.0: the cell set equal to the grid, as RELION 3.1 job files are written)."""
    import mrcfile

    folder.mkdir(exist_ok=True)
    for name in ("particles.star", "particles.mrcs"):
        shutil.copy(FIXTURE / name, folder / name)
    with mrcfile.open(folder / "particles.mrcs", "r+", permissive=True) as m:
        nz, ny, nx = m.data.shape
        m.header.cella = (nx * voxel, ny * voxel, nz * voxel)  # voxel 1.0: cell = grid
    return folder / "particles.star"


def other_protein(path: Path) -> Path:
    """The bend sample's molecule, placed like the hinge model: another protein, same place."""
    from gmmplat.synthetic.motions import get_motion

    m = get_motion("bend").model
    m.to_structure(m.xyz + CENTRE, name="bend").write_pdb(str(path))
    return path


def renumbered(src: Path, path: Path) -> Path:
    """The same model with every residue number shifted by 100."""
    import gemmi

    st = gemmi.read_structure(str(src))
    for ch in st[0]:
        for res in ch:
            res.seqid.num += 100
    st.write_pdb(str(path))
    return path


def text_file(path: Path) -> Path:
    path.write_text("x y z\n1 2 3\n")
    return path


def gmm_variant(src: Path, path: Path, **change) -> Path:
    with np.load(src) as z:
        d = {k: z[k] for k in z.files}
    for k, v in change.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    with open(path, "wb") as fh:
        np.savez(fh, **d)
    return path


def nan_gmm(src: Path, path: Path) -> Path:
    with np.load(src) as z:
        p = z["params"].copy()
    p[3, 0] = np.nan
    return gmm_variant(src, path, params=p)


def copy_particles(data, tmp) -> Path:
    shutil.copytree(data / "particles", tmp / "p")
    return tmp / "p"


def truth_with(run_dir, tmp, t0):  # noqa: F811
    df = pd.read_csv(run_dir / "truth.csv").astype({"t": object})
    df.loc[5, "t"] = t0
    df.to_csv(tmp / "truth_bad.csv", index=False)
    return tmp / "truth_bad.csv"


def read_only(tmp, monkeypatch):
    """Everything under ``tmp`` reports no write permission (root may write anyway)."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: (real(p, mode, **k) and not str(p).startswith(str(tmp))))


# ------------------------------------------------------------------ the cases
# each: (verb, builder(ctx) -> (argv after the verb, needle in the error line))
def _train(ctx, *extra, star=None, gmm=None, out=None, src=None):
    d = ctx.data / "particles"
    return [*(src or ["--star", star or d / "particles.star"]), "--gmm", gmm or d / "gmm.npz",
            *(extra or TRAIN_FAST), "--out", out or ctx.tmp / "run"]


def _cs(path, *extra):
    """Particle options for a .cs of the RELION-convention fixture (its stack found through --datadir)."""
    return ["--cs", path, "--datadir", FIXTURE, *extra]


def _check(ctx, *extra, src=None, map_=None, out=None):
    return [*(src or ["--star", FIXTURE / "particles.star"]), "--map", map_ or FIXTURE / "consensus.mrc",
            "--out", out or ctx.tmp / "check", "--n", "8", "--no-progress", *extra]


def _select(ctx, *extra, how=("--pc", "1", "--range", "0,10"), run=None, out=None):
    return ["--run", run or ctx.run_dir / "run", *how, "--out", out or ctx.tmp / "sub.star", *extra]


def _analyze(ctx, *extra, run=None, out=None):
    return ["--run", run or ctx.run_dir / "run", "--out", out or ctx.tmp / "analysis", "--frames", "2", *extra]


def _morph(ctx, *extra, run=None, model=None, out=None):
    return ["--run", run or ctx.run_dir / "run", "--model", model or ctx.run_dir / "neutral_model.pdb",
            "--out", out or ctx.tmp / "m.pdb", "--frames", "2", *extra]


def _evaluate(ctx, *extra, out=None, truth=None):
    return ["--run", ctx.run_dir / "run", "--truth", truth or ctx.run_dir / "truth.csv",
            "--out", out or ctx.tmp / "scores.json", *extra]


def _build(ctx, *extra, out=None, map_=None):
    return ["--map", map_ or ctx.files / "map.mrc", "--refine-steps", "0", *extra, "--out", out or ctx.tmp / "gmm"]


def _sim(ctx, *extra, out=None):
    return ["hinge", "--out", out or ctx.tmp / "data", "--n-particles", "4", "--box", "32", "--pixel-size", "4",
            "--quiet", *extra]


def _file(p, text="x"):
    p.write_text(text)
    return p


def _save(path, records):
    """A structured array as a .cs file (np.save with a path would append .npy)."""
    with open(path, "wb") as fh:
        np.save(fh, records)
    return path


CASES = {
    # ---------------------------------------------------------------- simulate
    "simulate-out-is-file": ("simulate", lambda c: (_sim(c, out=_file(c.tmp / "f")), "--out is an existing file")),
    "simulate-parent-is-file": ("simulate", lambda c: (_sim(c, out=_file(c.tmp / "f") / "d"), "is a file")),
    "simulate-read-only-out": ("simulate", lambda c: (c.read_only() or _sim(c), "no permission")),
    "simulate-existing-dataset": ("simulate", lambda c: (
        _file((c.tmp / "data" / "hinge").mkdir(parents=True) or c.tmp / "data" / "hinge" / "particles.star")
        and _sim(c), "--overwrite")),
    "simulate-zero-particles": ("simulate", lambda c: (_sim(c, "--n-particles", "0"), "--n-particles")),
    "simulate-negative-box": ("simulate", lambda c: (_sim(c, "--box", "-4"), "--box")),
    "simulate-negative-snr": ("simulate", lambda c: (_sim(c, "--snr", "-1"), "--snr")),
    "simulate-pixel-size-text": ("simulate", lambda c: (_sim(c, "--pixel-size", "abc"), "--pixel-size")),
    "simulate-unknown-dataset": ("simulate", lambda c: (["hing", "--out", c.tmp / "d"], "invalid choice")),
    # ---------------------------------------------------------------- build
    "build-out-is-file": ("build", lambda c: (_build(c, out=_file(c.tmp / "f")), "--out is an existing file")),
    "build-parent-is-file": ("build", lambda c: (_build(c, out=_file(c.tmp / "f") / "g"), "is a file")),
    "build-read-only-out": ("build", lambda c: (c.read_only() or _build(c), "no permission")),
    "build-out-not-empty": ("build", lambda c: (
        _file((c.tmp / "gmm").mkdir() or c.tmp / "gmm" / "old.txt") and _build(c), "--overwrite")),
    "build-negative-resolution": ("build", lambda c: (_build(c, "--resolution", "-6"), "--resolution")),
    "build-zero-gaussians": ("build", lambda c: (_build(c, "--n-gaussians", "0"), "--n-gaussians")),
    "build-negative-refine-steps": ("build", lambda c: (_build(c, "--refine-steps", "-1"), "--refine-steps")),
    "build-missing-map": ("build", lambda c: (_build(c, map_=c.tmp / "missing.mrc"), "missing.mrc")),
    "build-truncated-map": ("build", lambda c: (_build(c, map_=c.truncated_map()), "cut.mrc")),
    "build-map-is-text": ("build", lambda c: (_build(c, map_=text_file(c.tmp / "t.mrc")), "t.mrc")),
    "build-missing-model": ("build", lambda c: (_build(c, "--model", c.tmp / "none.pdb"), "none.pdb")),
    "build-model-far-from-map": ("build", lambda c: (_build(c, "--model", c.files / "far.pdb"), "far.pdb")),
    "build-no-density-above-threshold": ("build", lambda c: (_build(c, "--threshold", "1e6"), "map.mrc")),
    "build-chain-matches-nothing": ("build", lambda c: (
        _build(c, "--model", c.files / "partial.pdb", "--chains", "Q"), "matches no atoms")),
    "build-combine-without-model": ("build", lambda c: (_build(c, "--combine"), "--combine needs --model")),
    "build-mask-of-another-box": ("build", lambda c: (
        _build(c, "--model", c.files / "partial.pdb", "--mask", f"dom=map:{c.big_mask()}"), "mask.mrc")),
    "build-bad-selection": ("build", lambda c: (_build(c, "--selection", "sidechain"), "--selection")),
    # ---------------------------------------------------------------- train
    "train-out-is-file": ("train", lambda c: (_train(c, out=_file(c.tmp / "f")), "--out is an existing file")),
    "train-parent-is-file": ("train", lambda c: (_train(c, out=_file(c.tmp / "f") / "r"), "is a file")),
    "train-read-only-out": ("train", lambda c: (c.read_only() or _train(c), "no permission")),
    "train-no-out": ("train", lambda c: (_train(c)[:-2], "--out is required")),
    "train-device-tpu": ("train", lambda c: (_train(c, *TRAIN_FAST, "--device", "tpu"), "--device 'tpu'")),
    "train-negative-cache": ("train", lambda c: (_train(c, *TRAIN_FAST, "--cache-mb", "-5"), "--cache-mb")),
    "train-negative-workers": ("train", lambda c: (_train(c, *TRAIN_FAST, "--workers", "-1"), "--workers")),
    "train-zero-threads": ("train", lambda c: (_train(c, *TRAIN_FAST, "--threads", "0"), "--threads")),
    "train-zero-epochs": ("train", lambda c: (_train(c, "--preset", "rigid", "--domain", "domain", "--epochs", "0"),
                                              "--epochs")),
    "train-zero-batch": ("train", lambda c: (_train(c, "--preset", "free", "--batch-size", "0"), "--batch-size")),
    "train-zero-latent-dim": ("train", lambda c: (_train(c, "--preset", "free", "--latent-dim", "0"), "--latent-dim")),
    "train-star-is-folder": ("train", lambda c: (_train(c, star=c.data / "particles"), "--star is a folder")),
    "train-missing-star": ("train", lambda c: (_train(c, star=c.tmp / "none.star"), "none.star")),
    "train-missing-gmm": ("train", lambda c: (_train(c, gmm=c.tmp / "none.npz"), "none.npz")),
    "train-gmm-is-text": ("train", lambda c: (_train(c, gmm=text_file(c.tmp / "t.npz")), "t.npz: not a GMM file")),
    "train-gmm-without-params": ("train", lambda c: (
        _train(c, gmm=gmm_variant(c.gmm, c.tmp / "g.npz", params=None)), "g.npz: GMM file lacks params")),
    "train-gmm-params-wrong-shape": ("train", lambda c: (
        _train(c, gmm=gmm_variant(c.gmm, c.tmp / "g.npz", params=np.zeros((4, 3), np.float32))), "g.npz")),
    "train-gmm-nan": ("train", lambda c: (_train(c, gmm=nan_gmm(c.gmm, c.tmp / "g.npz")), "g.npz: GMM params hold NaN")),
    "train-gmm-other-box": ("train", lambda c: (_train(c, gmm=c.other_box_gmm()), "disagrees with the particles")),
    "train-rigid-without-domain": ("train", lambda c: (_train(c, "--preset", "rigid"), "--domain")),
    "train-unknown-symmetry": ("train", lambda c: (_train(c, *TRAIN_FAST, "--symmetry", "X9"), "X9")),
    "train-config-not-json": ("train", lambda c: (_train(c, "--config", _file(c.tmp / "bad.json", "{not")),
                                                  "bad.json: not valid JSON")),
    "train-config-unknown-key": ("train", lambda c: (_train(c, "--config", _file(c.tmp / "k.json", json.dumps(
        {"rounds": [{"epochs": 1, "decoders": ["a"]}], "decoders": {}, "learning_rate": 1}))), "learning_rate")),
    "train-config-is-folder": ("train", lambda c: (_train(c, "--config", c.tmp), "is a folder")),
    "train-config-beyond-nyquist": ("train", lambda c: (_train(c, "--config", _file(c.tmp / "n.json", json.dumps(
        {"latent_dim": 2, "decoders": {"d": {"kind": "rigid", "options": {"domains": ["domain"]}}},
         "rounds": [{"decoders": ["d"], "epochs": 1, "high_res_angstrom": 3.0}]}))), "beyond Nyquist")),
    "train-nan-images-checked": ("train", lambda c: (
        _train(c, *TRAIN_FAST, "--check-images", star=c.nan_images(constant=11)),
        "NaN/inf values at STAR row(s) 3; 1 constant image(s) at STAR row(s) 12 (particle rows counted from 1)")),
    "train-nan-images-while-training": ("train", lambda c: (_train(c, star=c.nan_images()), "NaN/inf values")),
    "train-missing-stack": ("train", lambda c: (_train(c, star=c.star_without_stack()), "stack.mrcs")),
    "train-resume-star-fewer-particles": ("train", lambda c: c.resume_after_edit(drop=4)),
    "train-resume-star-edited": ("train", lambda c: c.resume_after_edit(drop=0)),
    "train-cs-given-star-file": ("train", lambda c: (_train(c, src=_cs(FIXTURE / "particles.star")),
                                                     "--cs expects a cryoSPARC particle file")),
    "train-star-given-cs-file": ("train", lambda c: (_train(c, star=c.cs()), "give it with --cs")),
    "train-passthrough-without-cs": ("train", lambda c: (
        _train(c, src=["--star", c.data / "particles" / "particles.star", "--passthrough", c.cs()]),
        "--passthrough goes with --cs")),
    "train-cs-is-folder": ("train", lambda c: (_train(c, src=_cs(c.tmp)), "--cs is a folder")),
    "train-cs-missing": ("train", lambda c: (_train(c, src=_cs(c.tmp / "none.cs")), "none.cs: file not found")),
    "train-cs-is-text": ("train", lambda c: (_train(c, src=_cs(_file(c.tmp / "t.cs"))), "t.cs: not a cryoSPARC")),
    "train-cs-missing-field": ("train", lambda c: (
        _train(c, src=_cs(c.cs(drop=("ctf/df1_A",)))), "missing CTF field(s): ctf/df1_A")),
    "train-cs-missing-pose": ("train", lambda c: (
        _train(c, src=_cs(c.cs(drop=("alignments3D/pose",)))), "missing pose field(s): alignments3D/pose")),
    "train-cs-uid-not-in-passthrough": ("train", lambda c: (
        _train(c, src=_cs(*c.cs_short_passthrough())), "pt.cs: 1 uid(s)")),
    "train-passthrough-is-folder": ("train", lambda c: (
        _train(c, src=_cs(c.cs(), "--passthrough", c.tmp)), "--passthrough is a folder")),
    "train-cs-blob-idx-past-end": ("train", lambda c: (_train(c, src=_cs(c.cs_past_end())), "blob/idx 48")),
    "train-datadir-missing": ("train", lambda c: (
        _train(c, src=["--cs", c.cs(), "--datadir", c.tmp / "nodir"]), "nodir: --datadir not found")),
    "train-datadir-is-file": ("train", lambda c: (
        _train(c, src=["--cs", c.cs(), "--datadir", _file(c.tmp / "f")]), "--datadir is not a folder")),
    "train-negative-amplitude-contrast": ("train", lambda c: (
        _train(c, src=_cs(c.cs(), "--amplitude-contrast", "-0.1")), "--amplitude-contrast")),
    "train-voltage-out-of-range": ("train", lambda c: (
        _train(c, src=_cs(c.cs(), "--voltage", "30000")), "--voltage: must lie in 1..5000")),
    "train-cs-mm-text": ("train", lambda c: (_train(c, src=_cs(c.cs(), "--cs-mm", "2,7")), "--cs-mm")),
    # ---------------------------------------------------------------- analyze
    "analyze-out-is-file": ("analyze", lambda c: (_analyze(c, out=_file(c.tmp / "f")), "--out is an existing file")),
    "analyze-parent-is-file": ("analyze", lambda c: (_analyze(c, out=_file(c.tmp / "f") / "a"), "is a file")),
    "analyze-read-only-out": ("analyze", lambda c: (c.read_only() or _analyze(c), "no permission")),
    "analyze-out-not-empty": ("analyze", lambda c: (
        _file((c.tmp / "analysis").mkdir() or c.tmp / "analysis" / "pca.json") and _analyze(c), "--overwrite")),
    "analyze-missing-run": ("analyze", lambda c: (_analyze(c, run=c.tmp / "norun"), "norun")),
    "analyze-truth-not-numeric": ("analyze", lambda c: (
        _analyze(c, "--truth", truth_with(c.run_dir, c.tmp, "abc")), "truth_bad.csv")),
    "analyze-too-many-pcs": ("analyze", lambda c: (_analyze(c, "--pcs", "3"), "3 principal components")),
    "analyze-zero-frames": ("analyze", lambda c: (_analyze(c, "--frames", "0"), "--frames")),
    "analyze-negative-states": ("analyze", lambda c: (_analyze(c, "--states", "-1"), "--states")),
    "analyze-map-other-box": ("analyze", lambda c: (_analyze(c, "--map", c.small_map()), "small.mrc")),
    "analyze-model-other-protein": ("analyze", lambda c: (
        _analyze(c, "--model", other_protein(c.tmp / "bend.pdb"), run=c.rec_run), "bend.pdb")),
    "analyze-latent-is-text": ("analyze", lambda c: (
        _analyze(c, "--latent", text_file(c.tmp / "z.npy")), "z.npy: not a latent array")),
    "analyze-latent-is-folder": ("analyze", lambda c: (_analyze(c, "--latent", c.tmp), "not a latent array")),
    "analyze-latent-short": ("analyze", lambda c: (_analyze(c, "--latent", c.short_latent()), "short.npy")),
    "analyze-star-without-reconstruct": ("analyze", lambda c: (
        _analyze(c, "--star", c.run_dir / "particles.star"), "--reconstruct")),
    "analyze-datadir-without-star": ("analyze", lambda c: (
        _analyze(c, "--reconstruct", "5", "--datadir", c.tmp), "--datadir")),
    "analyze-fails-late": ("analyze", lambda c: (
        _analyze(c, "--states", "3", "--model", other_protein(c.tmp / "bend.pdb"), run=c.rec_run),
        "not the model the GMM was built from")),
    # ---------------------------------------------------------------- refine
    "refine-missing-run": ("refine", lambda c: (["--run", c.tmp / "norun"], "norun")),
    "refine-one-anchor": ("refine", lambda c: (["--run", c.run_dir / "run", "--anchors", "1"], "--anchors")),
    "refine-zero-anchors": ("refine", lambda c: (["--run", c.run_dir / "run", "--anchors", "0"], "--anchors")),
    "refine-negative-band": ("refine", lambda c: (["--run", c.run_dir / "run", "--high-res", "-4"], "--high-res")),
    "refine-zero-temperature": ("refine", lambda c: (["--run", c.run_dir / "run", "--temperature", "0"],
                                                     "--temperature")),
    "refine-unknown-device": ("refine", lambda c: (["--run", c.run_dir / "run", "--device", "tpu"], "tpu")),
    "refine-stack-missing": ("refine", lambda c: (["--run", c.run_dir / "run"], "stack.mrcs")),
    "refine-read-only-run": ("refine", lambda c: (
        shutil.copytree(c.run_dir / "run", c.tmp / "run") and c.read_only() or ["--run", c.tmp / "run"],
        "no permission")),
    "refine-latent-short": ("refine", lambda c: (
        shutil.copytree(c.run_dir / "run", c.tmp / "run") and np.save(c.tmp / "run" / "latent_encoder.npy",
                                                                        np.zeros((5, 2), np.float32))
        or ["--run", c.tmp / "run"], "latent_encoder.npy")),
    # ---------------------------------------------------------------- morph
    "morph-out-folder-missing": ("morph", lambda c: (_morph(c, out=c.tmp / "nowhere" / "m.pdb"), "does not exist")),
    "morph-out-is-folder": ("morph", lambda c: (_morph(c, out=c.tmp), "is an existing folder")),
    "morph-read-only-out": ("morph", lambda c: (c.read_only() or _morph(c), "no permission")),
    "morph-model-other-protein": ("morph", lambda c: (
        _morph(c, run=c.rec_run, model=other_protein(c.tmp / "bend.pdb")), "bend.pdb")),
    "morph-model-renumbered": ("morph", lambda c: (
        _morph(c, run=c.rec_run, model=renumbered(c.run_dir / "neutral_model.pdb", c.tmp / "renum.pdb")),
        "residue numbering differs")),
    "morph-z-wrong-length": ("morph", lambda c: (_morph(c, "--z", "-1,-2,-3"), "--z")),
    "morph-z-not-numbers": ("morph", lambda c: (_morph(c, "--z", "a,b"), "--z")),
    "morph-zero-pc": ("morph", lambda c: (_morph(c, "--pc", "0"), "--pc")),
    "morph-pc-beyond-latent": ("morph", lambda c: (_morph(c, "--pc", "5"), "principal component")),
    "morph-model-missing": ("morph", lambda c: (_morph(c, model=c.tmp / "none.pdb"), "none.pdb")),
    # ---------------------------------------------------------------- evaluate
    "evaluate-out-folder-missing": ("evaluate", lambda c: (_evaluate(c, out=c.tmp / "no" / "s.json"), "does not exist")),
    "evaluate-read-only-out": ("evaluate", lambda c: (c.read_only() or _evaluate(c), "no permission")),
    "evaluate-truth-not-numeric": ("evaluate", lambda c: (
        _evaluate(c, truth=truth_with(c.run_dir, c.tmp, "0.3x")), "column 't' holds a non-numeric value")),
    "evaluate-truth-missing": ("evaluate", lambda c: (_evaluate(c, truth=c.tmp / "none.csv"), "none.csv")),
    "evaluate-frames-without-model": ("evaluate", lambda c: (
        _evaluate(c, "--truth-frames", c.run_dir / "truth_frames.pdb"), "--truth-frames and --model")),
    "evaluate-zero-k": ("evaluate", lambda c: (_evaluate(c, "--k", "0"), "--k")),
    "evaluate-latent-short": ("evaluate", lambda c: (_evaluate(c, "--latent", c.short_latent()), "short.npy")),
    "evaluate-model-other-protein": ("evaluate", lambda c: (
        ["--run", c.rec_run, "--truth", c.run_dir / "truth.csv", "--out", c.tmp / "s.json",
         "--truth-frames", c.run_dir / "truth_frames.pdb", "--model", other_protein(c.tmp / "bend.pdb")], "bend.pdb")),
    # ---------------------------------------------------------------- check
    "check-out-is-file": ("check", lambda c: (_check(c, out=_file(c.tmp / "f")), "--out is an existing file")),
    "check-out-png-is-folder": ("check", lambda c: (
        _check(c, out=c.tmp / "c.png") if (c.tmp / "c.png").mkdir() is None else None, "is an existing folder")),
    "check-csv-beside-png-is-folder": ("check", lambda c: (
        _check(c, out=c.tmp / "c.png") if (c.tmp / "c.csv").mkdir() is None else None, "c.csv")),
    "check-check-png-is-folder": ("check", lambda c: (
        _check(c) if (c.tmp / "check" / "check.png").mkdir(parents=True) is None else None, "check.png")),
    "check-png-folder-missing": ("check", lambda c: (_check(c, out=c.tmp / "no" / "c.png"), "does not exist")),
    "check-parent-is-file": ("check", lambda c: (_check(c, out=_file(c.tmp / "f") / "c"), "is a file")),
    "check-read-only-out": ("check", lambda c: (c.read_only() or _check(c), "no permission")),
    "check-n-too-small": ("check", lambda c: (_check(c, "--n", "2"), "--n: must be >= 3")),
    "check-n-not-integer": ("check", lambda c: (_check(c, "--n", "1e3"), "--n")),
    "check-negative-lowpass": ("check", lambda c: (_check(c, "--lowpass-angstrom", "-12"), "--lowpass-angstrom")),
    "check-lowpass-beyond-nyquist": ("check", lambda c: (
        _check(c, "--lowpass-angstrom", "2"), "--lowpass-angstrom 2 is beyond Nyquist")),
    "check-negative-seed": ("check", lambda c: (_check(c, "--seed", "-1"), "--seed")),
    "check-no-map": ("check", lambda c: (_check(c)[:2] + _check(c)[4:], "required: --map")),
    "check-missing-map": ("check", lambda c: (_check(c, map_=c.tmp / "none.mrc"), "none.mrc: file not found")),
    "check-map-is-folder": ("check", lambda c: (_check(c, map_=c.tmp), "--map is a folder")),
    "check-map-is-text": ("check", lambda c: (_check(c, map_=text_file(c.tmp / "t.mrc")), "t.mrc")),
    "check-map-other-pixel-size": ("check", lambda c: (_check(c, map_=c.small_map()), "small.mrc")),
    "check-missing-model": ("check", lambda c: (_check(c, "--model", c.tmp / "none.pdb"), "none.pdb")),
    "check-model-is-folder": ("check", lambda c: (_check(c, "--model", c.tmp), "--model is a folder")),
    "check-model-outside-map": ("check", lambda c: (_check(c, "--model", c.far_model()), "far.pdb")),
    "check-missing-star": ("check", lambda c: (_check(c, src=["--star", c.tmp / "none.star"]), "none.star")),
    "check-star-is-folder": ("check", lambda c: (_check(c, src=["--star", c.tmp]), "--star is a folder")),
    "check-star-and-cs": ("check", lambda c: (
        _check(c, src=["--star", FIXTURE / "particles.star", "--cs", c.cs()]), "not allowed with argument")),
    "check-cs-given-star-file": ("check", lambda c: (_check(c, src=_cs(FIXTURE / "particles.star")), "--cs expects")),
    "check-star-given-cs-file": ("check", lambda c: (_check(c, src=["--star", c.cs()]), "give it with --cs")),
    "check-passthrough-without-cs": ("check", lambda c: (
        _check(c, src=["--star", FIXTURE / "particles.star", "--passthrough", c.cs()]), "--passthrough goes with --cs")),
    "check-cs-is-folder": ("check", lambda c: (_check(c, src=_cs(c.tmp)), "--cs is a folder")),
    "check-cs-missing-pose": ("check", lambda c: (
        _check(c, src=_cs(c.cs(drop=("alignments3D/pose",)))), "missing pose field(s): alignments3D/pose")),
    "check-cs-missing-amplitude-contrast": ("check", lambda c: (
        _check(c, src=_cs(c.cs(drop=("ctf/amp_contrast",)))), "ctf/amp_contrast")),
    "check-cs-uid-not-in-passthrough": ("check", lambda c: (_check(c, src=_cs(*c.cs_short_passthrough())), "pt.cs")),
    "check-passthrough-missing": ("check", lambda c: (
        _check(c, src=_cs(c.cs(), "--passthrough", c.tmp / "none.cs")), "none.cs: file not found")),
    "check-cs-blob-idx-past-end": ("check", lambda c: (_check(c, src=_cs(c.cs_past_end())), "blob/idx 48")),
    "check-cs-stack-not-found": ("check", lambda c: (_check(c, src=["--cs", c.cs()]), "particles.mrcs")),
    "check-datadir-is-file": ("check", lambda c: (
        _check(c, src=["--cs", c.cs(), "--datadir", _file(c.tmp / "f")]), "--datadir is not a folder")),
    "check-negative-amplitude-contrast": ("check", lambda c: (
        _check(c, src=_cs(c.cs(), "--amplitude-contrast", "-0.07")), "--amplitude-contrast")),
    "check-voltage-zero": ("check", lambda c: (_check(c, src=_cs(c.cs(), "--voltage", "0")), "--voltage")),
    "check-cs-mm-nan": ("check", lambda c: (_check(c, src=_cs(c.cs(), "--cs-mm", "nan")), "--cs-mm")),
    # ---------------------------------------------------------------- select
    "select-out-is-folder": ("select", lambda c: (_select(c, out=c.tmp), "--out must end in .star or .cs")),
    "select-out-star-is-folder": ("select", lambda c: (
        _select(c) if (c.tmp / "sub.star").mkdir() is None else None, "--out is an existing folder")),
    "select-out-folder-missing": ("select", lambda c: (_select(c, out=c.tmp / "no" / "s.star"), "does not exist")),
    "select-out-parent-is-file": ("select", lambda c: (_select(c, out=_file(c.tmp / "f") / "s.star"), "is a file")),
    "select-read-only-out": ("select", lambda c: (c.read_only() or _select(c), "no permission")),
    "select-out-wrong-suffix": ("select", lambda c: (_select(c, out=c.tmp / "sub.txt"), "sub.txt: --out must end")),
    "select-out-is-the-particle-file": ("select", lambda c: (
        _select(c, out=c.run_dir / "particles.star"), "--out is the particle file")),
    "select-star-written-as-cs": ("select", lambda c: (_select(c, out=c.tmp / "sub.cs"), "not .cs")),
    "select-no-selection": ("select", lambda c: (_select(c, how=()), "give a selection")),
    "select-zero-pc": ("select", lambda c: (_select(c, how=("--pc", "0", "--range", "0,1")), "--pc")),
    "select-pc-without-range": ("select", lambda c: (_select(c, how=("--pc", "1")), "--pc and --range")),
    "select-pc-beyond-latent": ("select", lambda c: (
        _select(c, how=("--pc", "3", "--range", "0,1")), "--pc 3: the latent has 2")),
    "select-range-one-number": ("select", lambda c: (_select(c, how=("--pc", "1", "--range", "1")), "--range")),
    "select-range-not-numbers": ("select", lambda c: (_select(c, how=("--pc", "1", "--range", "a,b")), "--range")),
    "select-range-reversed": ("select", lambda c: (
        _select(c, how=("--pc", "1", "--range", "-0.5,-1.5")), "--range -0.5,-1.5: LO must be below HI")),
    "select-range-nan": ("select", lambda c: (_select(c, how=("--pc", "1", "--range", "nan,1")), "--range")),
    "select-nothing-selected": ("select", lambda c: (
        _select(c, how=("--pc", "1", "--range", "50,60")), "no particle selected")),
    "select-ellipse-three-numbers": ("select", lambda c: (_select(c, how=("--ellipse", "0,0,1")), "--ellipse")),
    "select-ellipse-negative-axis": ("select", lambda c: (
        _select(c, how=("--ellipse", "0,0,-1,1")), "--ellipse semi-axes")),
    "select-negative-state": ("select", lambda c: (_select(c, how=("--state", "-1")), "--state")),
    "select-unknown-state": ("select", lambda c: (
        _select(c, "--analysis", c.kmeans(labels=np.zeros(N_PARTICLES, int)), how=("--state", "3")), "state(s) [3]")),
    "select-kmeans-missing": ("select", lambda c: (
        _select(c, "--analysis", c.tmp, how=("--state", "0")), "run gmmplat analyze --states K first")),
    "select-kmeans-is-text": ("select", lambda c: (
        _select(c, "--analysis", c.kmeans(text=True), how=("--state", "0")), "kmeans.npz: not a k-means file")),
    "select-kmeans-without-labels": ("select", lambda c: (
        _select(c, "--analysis", c.kmeans(centres=np.zeros((2, 2))), how=("--state", "0")), "holds no labels")),
    "select-kmeans-wrong-length": ("select", lambda c: (
        _select(c, "--analysis", c.kmeans(labels=np.zeros(5, int)), how=("--state", "0")), "has 5 labels")),
    "select-kmeans-float-labels": ("select", lambda c: (
        _select(c, "--analysis", c.kmeans(labels=np.zeros(N_PARTICLES)), how=("--state", "0")), "labels must be integers")),
    "select-indices-missing": ("select", lambda c: (
        _select(c, how=("--indices", c.tmp / "none.npy")), "none.npy: file not found")),
    "select-indices-is-folder": ("select", lambda c: (_select(c, how=("--indices", c.tmp)), "--indices is a folder")),
    "select-indices-is-text": ("select", lambda c: (
        _select(c, how=("--indices", text_file(c.tmp / "s.npy"))), "s.npy: not a readable .npy")),
    "select-indices-past-end": ("select", lambda c: (
        _select(c, how=("--indices", c.npy([0, 150]))), "particle rows must lie in 0..149")),
    "select-indices-floats": ("select", lambda c: (_select(c, how=("--indices", c.npy([0.5]))), "expected particle rows")),
    "select-indices-mask-wrong-length": ("select", lambda c: (
        _select(c, how=("--indices", c.npy(np.ones(7, bool)))), "boolean mask has 7 entries")),
    "select-indices-npz": ("select", lambda c: (
        _select(c, how=("--indices", c.kmeans(labels=np.zeros(N_PARTICLES, int)) / "kmeans.npz")), "not a .npy array")),
    "select-missing-run": ("select", lambda c: (_select(c, run=c.tmp / "norun"), "norun")),
    "select-latent-short": ("select", lambda c: (_select(c, "--latent", c.short_latent()), "short.npy")),
    "select-latent-is-text": ("select", lambda c: (
        _select(c, "--latent", text_file(c.tmp / "z.npy")), "z.npy: not a latent array")),
    "select-cs-of-other-particles": ("select", lambda c: (
        _select(c, *_cs(c.cs())), "has 48 particles but the latent")),
    "select-cs-given-star-file": ("select", lambda c: (_select(c, "--cs", c.run_dir / "particles.star"), "--cs expects")),
    "select-cs-is-folder": ("select", lambda c: (_select(c, "--cs", c.tmp), "--cs is a folder")),
    "select-passthrough-without-particle-file": ("select", lambda c: (
        _select(c, "--passthrough", c.cs()), "--passthrough only apply with --star or --cs")),
    "select-datadir-without-particle-file": ("select", lambda c: (
        _select(c, "--datadir", FIXTURE, "--voltage", "300"), "--datadir and --voltage only apply")),
    "select-voltage-out-of-range": ("select", lambda c: (_select(c, "--voltage", "-300"), "--voltage")),
    "select-unknown-rule": ("select", lambda c: (_select(c, "--rule", "most"), "invalid choice")),
    # ---------------------------------------------------------------- demo (refused before simulating)
    "demo-no-notebooks": ("demo", lambda c: (
        ["--data", c.tmp / "data", "--out", c.tmp / "out", "--notebooks", c.tmp], "no notebooks named NN_*.ipynb")),
    "demo-notebook-folder-missing": ("demo", lambda c: (
        ["--data", c.tmp / "data", "--notebooks", c.tmp / "nb"], "notebook folder not found")),
    # ---------------------------------------------------------------- issue 27: identity, options, messages
    "train-resume-without-checkpoint": ("train", lambda c: (
        [*_train(c, out=c.tmp / "fresh"), "--resume"], "holds no checkpoint.pt, so there is no run to continue")),
    "train-resume-with-overwrite": ("train", lambda c: ([*_train(c), "--resume", "--overwrite"], "give one of them")),
    "train-cs-duplicate-uid": ("train", lambda c: (_train(c, src=_cs(c.cs_duplicate_uid())), "dup.cs: uid")),
    "check-cs-duplicate-uid": ("check", lambda c: (_check(c, src=_cs(c.cs_duplicate_uid())), "appears 2 times")),
    "train-passthrough-duplicate-uid": ("train", lambda c: (
        _train(c, src=_cs(*c.cs_passthrough_duplicate_uid())), "pt.cs: uid 12345 appears 2 times")),
    "train-voltage-differs-from-star": ("train", lambda c: (
        _train(c, src=["--star", c.data / "particles" / "particles.star", "--voltage", "200"]),
        "--voltage 200 given but the file has rlnVoltage (300)")),
    "check-cs-mm-differs-from-cs": ("check", lambda c: (
        _check(c, src=_cs(c.cs(), "--cs-mm", "2")), "--cs-mm 2 given but the file has ctf/cs_mm")),
    "check-lowpass-too-coarse": ("check", lambda c: (
        _check(c, "--lowpass-angstrom", "1000"), "--lowpass-angstrom 1000 leaves no frequency to correlate; "
                                                 "the usable range is 3..96 Å")),
    "check-lowpass-inf": ("check", lambda c: (_check(c, "--lowpass-angstrom", "inf"), "the usable range is 3..96 Å")),
    "check-map-all-zero": ("check", lambda c: (_check(c, map_=c.zero_map()), "zero.mrc: map is empty")),
    "check-star-given-as-cs": ("check", lambda c: (
        _check(c, src=_cs(c.star_named_cs())), "star.cs: not a cryoSPARC .cs file (expected the NumPy array")),
    "check-star-as-passthrough": ("check", lambda c: (
        _check(c, src=_cs(c.cs(), "--passthrough", FIXTURE / "particles.star")), "is a RELION STAR file")),
    "check-cs-missing-defocus-hint": ("check", lambda c: (
        _check(c, src=_cs(c.cs(drop=("ctf/df1_A",)), "--voltage", "300")), "no option supplies ctf/df1_A")),
    "train-missing-stack-names-datadir": ("train", lambda c: (_train(c, star=c.star_without_stack()), "--datadir")),
    "check-stack-header-disagrees": ("check", lambda c: (
        _check(c, src=["--star", c.fixture_with_header_voxel(2.0)]), "--trust-star-pixel-size")),
    "refine-zero-anchors-names-two": ("refine", lambda c: (
        ["--run", c.run_dir / "run", "--anchors", "0"], "--anchors: must be >= 2, got 0")),
    "select-out-exists": ("select", lambda c: (_file(c.tmp / "sub.star") and _select(c), "sub.star: --out exists")),
    "morph-out-exists": ("morph", lambda c: (_file(c.tmp / "m.cif") and _morph(c), "m.cif: --out exists")),
    "evaluate-out-exists": ("evaluate", lambda c: (_file(c.tmp / "scores.json") and _evaluate(c), "--overwrite")),
    "evaluate-allow-other-with-truth": ("evaluate", lambda c: (
        _evaluate(c, "--allow-other-particles"), "--allow-other-particles goes with --oracle")),
    "analyze-allow-other-without-reconstruct": ("analyze", lambda c: (
        _analyze(c, "--allow-other-particles"), "--allow-other-particles goes with --reconstruct")),
    # ---------------------------------------------------------------- any verb
    "missing-required-option": ("analyze", lambda c: (["--out", c.tmp / "a"], "--run")),
    "unknown-option": ("morph", lambda c: (_morph(c, "--colour", "red"), "--colour")),
}


class Ctx:
    def __init__(self, tmp, data, run_dir, rec_run, files, monkeypatch):  # noqa: F811
        self.tmp, self.data, self.run_dir, self.rec_run, self.files = tmp, data, run_dir, rec_run, files
        self.gmm = data / "particles" / "gmm.npz" if data is not None else None
        self.monkeypatch = monkeypatch

    def read_only(self):
        read_only(self.tmp, self.monkeypatch)

    def truncated_map(self):
        raw = (self.files / "map.mrc").read_bytes()
        (self.tmp / "cut.mrc").write_bytes(raw[: len(raw) // 2])
        return self.tmp / "cut.mrc"

    def big_mask(self):
        from gmmplat.io import write_map
        from test_build_helpers import APIX, BOX, ORIGIN

        write_map(self.tmp / "mask.mrc", np.ones((BOX + 4,) * 3, np.float32), APIX, ORIGIN)
        return self.tmp / "mask.mrc"

    def small_map(self):
        from gmmplat.io import write_map

        write_map(self.tmp / "small.mrc", np.zeros((32,) * 3, np.float32), 2.0)
        return self.tmp / "small.mrc"

    def short_latent(self):
        np.save(self.tmp / "short.npy", np.load(self.run_dir / "run" / "latent.npy")[:-1])
        return self.tmp / "short.npy"

    def other_box_gmm(self):
        from test_train_fixtures import make_neutral

        make_neutral(box=32, apix=4.0).save(self.tmp / "other.npz")
        return self.tmp / "other.npz"

    def cs(self, name="particles.cs", **change) -> Path:
        """A .cs of the RELION-convention fixture (``change``: :func:`make_cs` options)."""
        make_cs(self.tmp / name, **change)
        return self.tmp / name

    def cs_short_passthrough(self):
        """A .cs lacking ctf/df1_A, and ``--passthrough`` pt.cs that holds it for all but the first uid."""
        full = make_cs(self.tmp / "full.cs")
        _save(self.tmp / "main.cs", full[[f for f in full.dtype.names if f != "ctf/df1_A"]])
        _save(self.tmp / "pt.cs", full[["uid", "ctf/df1_A"]][1:])
        return self.tmp / "main.cs", "--passthrough", self.tmp / "pt.cs"

    def cs_duplicate_uid(self):
        """A .cs whose record 7 carries record 3's uid."""
        rec = make_cs(self.tmp / "dup.cs")
        rec["uid"][7] = rec["uid"][3]
        return _save(self.tmp / "dup.cs", rec)

    def cs_passthrough_duplicate_uid(self):
        """A .cs lacking ctf/df1_A, and a passthrough holding the first uid twice at different defocus."""
        full = make_cs(self.tmp / "full.cs")
        _save(self.tmp / "main.cs", full[[f for f in full.dtype.names if f != "ctf/df1_A"]])
        pt = full[["uid", "ctf/df1_A"]]
        twice = np.concatenate([pt, pt[:1]])
        twice["ctf/df1_A"][-1] += 6000.0
        _save(self.tmp / "pt.cs", twice)
        return self.tmp / "main.cs", "--passthrough", self.tmp / "pt.cs"

    def zero_map(self):
        from gmmplat.io import write_map

        write_map(self.tmp / "zero.mrc", np.zeros((64,) * 3, np.float32), 1.5)
        return self.tmp / "zero.mrc"

    def star_named_cs(self):
        shutil.copy(FIXTURE / "particles.star", self.tmp / "star.cs")
        return self.tmp / "star.cs"

    def fixture_with_header_voxel(self, voxel: float) -> Path:
        """The fixture's STAR file (1.5 Å/px) beside a copy of its stack whose header says ``voxel`` Å."""
        return fixture_with_header_voxel(self.tmp / "fx", voxel)

    def cs_past_end(self):
        """A .cs whose sixth record points at image 49 of the 48-image stack (blob/idx 48)."""
        rec = make_cs(self.tmp / "far.cs")
        rec["blob/idx"][5] = 48
        return _save(self.tmp / "far.cs", rec)

    def far_model(self):
        """The fixture's model moved 500 Å away from its map."""
        import gemmi

        st = gemmi.read_structure(str(FIXTURE / "model.pdb"))
        st.setup_entities()
        for ch in st[0]:
            for res in ch:
                for atom in res:
                    atom.pos = gemmi.Position(atom.pos.x + 500, atom.pos.y, atom.pos.z)
        st.write_pdb(str(self.tmp / "far.pdb"))
        return self.tmp / "far.pdb"

    def kmeans(self, text=False, **arrays) -> Path:
        """A folder holding kmeans.npz with ``arrays`` (or text, when ``text``)."""
        folder = self.tmp / "analysis_k"
        folder.mkdir(exist_ok=True)
        if text:
            _file(folder / "kmeans.npz", "labels 0 1 2\n")
        else:
            np.savez(folder / "kmeans.npz", **arrays)
        return folder

    def npy(self, values) -> Path:
        np.save(self.tmp / "sel.npy", np.asarray(values))
        return self.tmp / "sel.npy"

    def nan_images(self, constant=None):
        p = copy_particles(self.data, self.tmp)
        overwrite_images(p / "stack.mrcs", {2: np.nan, **({} if constant is None else {constant: 0.0})})
        return p / "particles.star"

    def star_without_stack(self):
        shutil.copy(self.data / "particles" / "particles.star", self.tmp / "particles.star")
        return self.tmp / "particles.star"

    def resume_after_edit(self, drop: int):
        """A finished one-epoch run, then its STAR edited in place: --resume is refused."""
        p = copy_particles(self.data, self.tmp)
        argv = _train(self, star=p / "particles.star", out=self.tmp / "done")
        assert cli.main(["train", *map(str, argv)]) == 0
        from gmmplat.io.star import TABLE_COLUMNS, read_particle_star, write_particle_star

        table = read_particle_star(p / "particles.star").table[TABLE_COLUMNS]
        if drop:
            table = table.iloc[:-drop]
        else:
            table = table.assign(defocus_u_angstrom=table["defocus_u_angstrom"] + 1.0)
        write_particle_star(p / "particles.star", table)
        return [*argv, "--resume"], ("now 20" if drop else "changed since the run started")


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input(case, tmp_path, data, run_dir, rec_run, files, capsys, monkeypatch):  # noqa: F811
    verb, make = CASES[case]
    ctx = Ctx(tmp_path, data, run_dir, rec_run, files, monkeypatch)
    argv, needle = make(ctx)
    capsys.readouterr()
    roots = [tmp_path, data, run_dir, files, FIXTURE]
    before = snapshot(roots)
    code = cli.main([verb, *map(str, argv)])
    err = capsys.readouterr().err
    assert_cli_error(code, err, verb, needle)
    after = snapshot(roots)
    changed = [p for p in before if p in after and after[p] != before[p]]
    assert not changed, f"changed by a failed command: {changed}"
    new = [p for p in after if p not in before]
    # a train that failed after starting leaves config.json / environment.json, which block nothing:
    # a folder is a run only once it holds checkpoint.pt
    new = [p for p in new if not (p.name in ("config.json", "environment.json") or p.is_dir() and
                                  (p / "config.json").exists() and not (p / "checkpoint.pt").exists())]
    assert not new, f"left by a failed command: {new}"


def snapshot(roots) -> dict:
    """path -> (size, mtime) of every file and folder under the roots (folders: size None)."""
    out = {}
    for root in roots:
        for p in Path(root).rglob("*"):
            st = p.stat()
            out[p] = (None, None) if p.is_dir() else (st.st_size, st.st_mtime_ns)
    return out


def test_enough_cases():
    assert len(CASES) >= 60
    assert {v for v, _ in CASES.values()} == set(cli.VERBS)


# ------------------------------------------------------------------ the corrected reruns
def call(capsys, verb, *argv):
    code = cli.main([verb, *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_failed_train_does_not_block_the_corrected_rerun(data, tmp_path, capsys):
    p = copy_particles(data, tmp_path)
    good = (p / "stack.mrcs").read_bytes()
    overwrite_images(p / "stack.mrcs", {2: np.nan})
    argv = _train(Ctx(tmp_path, data, None, None, None, None), star=p / "particles.star", out=tmp_path / "run")
    code, _, err = call(capsys, "train", *argv)
    assert_cli_error(code, err, "train", "NaN/inf")
    (p / "stack.mrcs").write_bytes(good)  # the user fixes the stack and reruns the same command
    code, out, err = call(capsys, "train", *argv)
    assert code == 0, err
    assert (tmp_path / "run" / "model.pt").is_file() and "done:" in out
    code, _, err = call(capsys, "train", *argv)  # now it is a run: refused without --resume
    assert_cli_error(code, err, "train", "already holds a run", "--resume")


def test_analyze_refuses_a_used_folder_and_overwrite_replaces_it_whole(run_dir, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "analysis"
    base = ["--run", run_dir / "run", "--out", out, "--frames", "2", "--pcs", "2"]
    code, _, err = call(capsys, "analyze", *base, "--model", run_dir / "neutral_model.pdb")
    assert code == 0, err
    assert (out / "models" / "pc1.pdb").is_file() and (out / "maps" / "pc2_frame01.mrc").is_file()
    code, _, err = call(capsys, "analyze", *base[:-2], "--pcs", "1")
    assert_cli_error(code, err, "analyze", str(out), "--overwrite")
    assert (out / "models" / "pc1.pdb").is_file()  # the refused rerun changed nothing
    code, _, err = call(capsys, "analyze", *base[:-2], "--pcs", "1", "--overwrite")
    assert code == 0, err
    assert not (out / "models").exists() and not (out / "maps" / "pc2_frame00.mrc").exists()
    assert (out / "maps" / "pc1_frame01.mrc").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_analyze_without_truth_warns_nothing(run_dir, tmp_path, capsys, recwarn):  # noqa: F811
    code, _, err = call(capsys, "analyze", "--run", run_dir / "run", "--out", tmp_path / "a", "--frames", "2", "--no-progress")
    assert code == 0 and err == ""
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)], [str(w.message) for w in recwarn]


def test_simulate_refuses_an_existing_dataset_and_overwrite_replaces_it(tmp_path, capsys):
    argv = ["hinge", "--out", tmp_path, "--n-particles", "4", "--box", "32", "--pixel-size", "4", "--quiet"]
    (tmp_path / "hinge" / "stacks").mkdir(parents=True)
    (tmp_path / "hinge" / "stacks" / "particles_007.mrcs").write_text("an older, larger dataset")
    code, _, err = call(capsys, "simulate", *argv)
    assert_cli_error(code, err, "simulate", "hinge", "--overwrite")
    assert (tmp_path / "hinge" / "stacks" / "particles_007.mrcs").is_file()
    code, _, err = call(capsys, "simulate", *argv, "--overwrite")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "hinge" / "stacks").iterdir()) == ["particles_000.mrcs"]
    assert json.loads((tmp_path / "hinge" / "metadata.json").read_text())["options"]["n_particles"] == 4


def _disk_full_after(n_bytes: int):
    """A ``Path.write_text`` that writes ``n_bytes`` then fails as a full disk does."""
    def write_text(self, text, *a, **k):
        with open(self, "w") as fh:
            fh.write(text[:n_bytes])
        raise OSError(28, "No space left on device", str(self))
    return write_text


@pytest.mark.parametrize("existing", [False, True])
def test_check_writes_figure_and_table_together_or_not_at_all(existing, tmp_path, capsys, monkeypatch):
    """The table fails to write after the figure is done: no figure, no table, no folder left
    (or the previous run's pair unchanged); the corrected rerun writes both."""
    import gmmplat.check.report as report

    out = tmp_path / "c"
    if existing:
        out.mkdir()
        _file(out / "check.png", "previous figure")
        _file(out / "check.csv", "previous table")
    before = snapshot([tmp_path])
    argv = _check(Ctx(tmp_path, None, None, None, None, None), out=out)
    real_table = report.CheckResult.table

    def table_on_a_full_disk(self):
        t = real_table(self)
        monkeypatch.setattr(type(t), "to_csv", lambda df, path, **k: _disk_full_after(20)(Path(path), "x" * 99))
        return t

    monkeypatch.setattr(report.CheckResult, "table", table_on_a_full_disk)
    code, _, err = call(capsys, "check", *argv)
    assert_cli_error(code, err, "check", "check.csv", "No space left on device")
    assert snapshot([tmp_path]) == before  # nothing new, nothing changed, no temporary file
    monkeypatch.undo()
    code, out_text, err = call(capsys, "check", *argv)
    assert code == 0, out_text + err
    assert (out / "check.png").stat().st_size > 1000 and "origin_flipped" in (out / "check.csv").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["check.csv", "check.png"]


@pytest.mark.parametrize("suffix", [".star", ".cs"])
def test_select_leaves_no_partial_subset(suffix, run_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    """A subset whose writing fails midway leaves nothing (a previous subset unchanged)."""
    (tmp_path / f"old{suffix}").write_text("previous subset")
    ctx = Ctx(tmp_path, None, run_dir, None, None, None)
    if suffix == ".star":
        argv = _select(ctx, "--overwrite", out=tmp_path / "old.star")
    else:  # a .cs of 48 particles, 5 rows chosen
        make_cs(tmp_path / "p.cs")
        argv = _select(ctx, *_cs(tmp_path / "p.cs"), "--latent", ctx.npy(np.zeros((48, 2), np.float32)),
                       "--overwrite", how=("--indices", _save(tmp_path / "rows.npy", np.arange(5))),
                       out=tmp_path / "old.cs")
    before = snapshot([tmp_path])
    if suffix == ".star":
        monkeypatch.setattr(Path, "write_text", _disk_full_after(50))
    else:
        def save_on_a_full_disk(fh, arr, *a, **k):
            fh.write(b"\x93NUMPY partial")
            raise OSError(28, "No space left on device", fh.name)

        monkeypatch.setattr(np, "save", save_on_a_full_disk)
    code, _, err = call(capsys, "select", *argv)
    assert_cli_error(code, err, "select", f"old{suffix}", "No space left on device")
    assert snapshot([tmp_path]) == before


def test_unwritable_output_while_writing_is_one_line(run_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    """An OS error on a user's path found only while writing (full disk, permissions): exit 2, one line."""
    import gmmplat.io.atomic as atomic

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(atomic, "atomic_write_path", refuse)
    code, _, err = call(capsys, "evaluate", "--run", run_dir / "run", "--truth", run_dir / "truth.csv",
                        "--out", tmp_path / "s.json")
    assert_cli_error(code, err, "evaluate", "s.json", "Permission denied")


# ------------------------------------------------------------------ internal errors: exit 3 + error.log
@pytest.mark.parametrize("with_folder", [True, False])
def test_internal_error_is_one_line_with_a_log(with_folder, run_dir, tmp_path, capsys, monkeypatch):  # noqa: F811
    import gmmplat.commands.morph as morph

    def broken(args):
        raise RuntimeError("unexpected\nstate")

    monkeypatch.setattr(morph, "run", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    # the log goes to the output folder, else the run folder, else the temporary folder
    out = tmp_path / "m.pdb" if with_folder else tmp_path / "absent" / "m.pdb"
    run = run_dir / "run" if with_folder else tmp_path / "absent"
    code, _, err = call(capsys, "morph", "--run", run, "--model", run_dir / "neutral_model.pdb", "--out", out)
    lines = err.strip().splitlines()
    log = (tmp_path if with_folder else tmp_path / "tmp") / ("error.log" if with_folder else "gmmplat-error.log")
    assert code == 3 and len(lines) == 1 and "Traceback" not in err
    assert lines[0] == (f"gmmplat morph: internal error: RuntimeError: unexpected state "
                        f"(please report; full traceback in {log})")
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: unexpected" in text and "gmmplat morph --run" in text


# ------------------------------------------------------------------ values and options users write
def test_negative_latent_coordinates_are_accepted_as_written(run_dir, tmp_path, capsys):  # noqa: F811
    code, out, err = call(capsys, "morph", "--run", run_dir / "run", "--model", run_dir / "neutral_model.pdb",
                          "--out", tmp_path / "z.pdb", "--z", "-0.07,-0.70; -1e-1,0.3")
    assert code == 0, err
    assert "2 latent point(s)" in out and (tmp_path / "z.cif").is_file()


def test_print_config_needs_no_out_and_a_run_config_is_accepted(data, tmp_path, capsys):
    d = data / "particles"
    code, out, err = call(capsys, "train", "--star", d / "particles.star", "--gmm", d / "gmm.npz",
                          "--preset", "rigid", "--domain", "domain", "--epochs", "3", "--print-config")
    assert code == 0, err
    printed = json.loads(out)
    assert printed["rounds"][0]["epochs"] == 3
    # a run folder's config.json ({"hash", "config"}) given as --config is its configuration
    (tmp_path / "config.json").write_text(json.dumps({"hash": "0123", "config": printed}))
    code, out, err = call(capsys, "train", "--star", d / "particles.star", "--gmm", d / "gmm.npz",
                          "--config", tmp_path / "config.json", "--print-config")
    assert code == 0, err
    assert json.loads(out) == printed
    assert printed["refine"]["anchors"] == 24  # the presets refine the latent
    for value in ("0", "12"):
        code, out, err = call(capsys, "train", "--star", d / "particles.star", "--gmm", d / "gmm.npz",
                              "--config", tmp_path / "config.json", "--refine-anchors", value, "--print-config")
        assert code == 0, err
        assert json.loads(out)["refine"]["anchors"] == int(value)
    for value, words in (("1", "at least 2"), ("-3", "-3"), ("many", "many")):
        code, out, err = call(capsys, "train", "--star", d / "particles.star", "--gmm", d / "gmm.npz",
                              "--preset", "rigid", "--domain", "domain", "--refine-anchors", value, "--print-config")
        assert_cli_error(code, err, "train", "--refine-anchors", words)


def test_resume_with_other_threads_says_so_once(data, tmp_path, capsys):
    argv = _train(Ctx(tmp_path, data, None, None, None, None), out=tmp_path / "run")
    assert call(capsys, "train", *argv, "--threads", "1")[0] == 0
    code, out, err = call(capsys, "train", *argv, "--threads", "2", "--resume")
    assert code == 0, err
    assert out.count("note: resuming with 2 torch thread(s); the run started with 1") == 1
    code, out, err = call(capsys, "train", *argv, "--threads", "1", "--resume")
    assert code == 0 and "note:" not in out


# ------------------------------------------------------------------ issue 27: the corrected reruns and the notes
@pytest.mark.parametrize("voxel", [1.0, 0.0])
def test_unset_stack_header_gives_way_to_the_star_pixel_size(voxel, tmp_path, capsys):
    """RELION 3.1 job files: the stack header's cell equals the grid (mrcfile reports 1 Å) or is 0, the STAR says
    1.5 Å: the STAR's value is used, with one note."""
    star = fixture_with_header_voxel(tmp_path / "fx", voxel)
    code, out, err = call(capsys, "check", "--star", star, "--map", FIXTURE / "consensus.mrc", "--n", "8",
                          "--out", tmp_path / "c", "--no-progress")
    assert code in (0, 1) and "Traceback" not in err, err
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "particles.mrcs: header pixel size" in notes[0] and "using 1.5 Å" in notes[0]
    assert ("unset value (cell = grid)" if voxel == 1.0 else "is unset (0)") in notes[0]


def test_trust_star_pixel_size_overrides_a_set_header(tmp_path, capsys):
    star = fixture_with_header_voxel(tmp_path / "fx", 2.0)
    code, out, err = call(capsys, "check", "--star", star, "--map", FIXTURE / "consensus.mrc", "--n", "8",
                          "--out", tmp_path / "c", "--no-progress", "--trust-star-pixel-size")
    assert code in (0, 1), err
    assert "header pixel size 2 Å disagrees (--trust-star-pixel-size); using 1.5 Å" in out


def test_a_voltage_typo_is_named_by_the_check_not_called_phase_flipped(tmp_path, capsys):
    make_cs(tmp_path / "nov.cs", drop=("ctf/accel_kv",))
    code, out, err = call(capsys, "check", *_cs(tmp_path / "nov.cs", "--voltage", "30"), "--map",
                          FIXTURE / "consensus.mrc", "--n", "16", "--out", tmp_path / "c", "--no-progress")
    assert code == 1, err
    verdict = [line for line in out.splitlines() if line.startswith("verdict:")][0]
    assert "CTF parameters are wrong (voltage 300 kV fits better)" in verdict and "phase" not in verdict
    assert "using --voltage 30 for every particle" in out


def test_a_ctf_option_equal_to_the_file_value_is_noted(data, tmp_path, capsys):
    d = data / "particles"
    code, out, err = call(capsys, "train", "--star", d / "particles.star", "--gmm", d / "gmm.npz", "--preset", "rigid",
                          "--domain", "domain", "--voltage", "300", "--print-config")
    assert code == 0, err  # print-config reads no particles; a run prints the note
    from gmmplat.io.particles import ParticleSource

    notes = ParticleSource(str(d / "particles.star"), voltage_kv=300.0).read().notes
    assert notes == [f"{d / 'particles.star'}: has rlnVoltage (300, as --voltage); --voltage is not needed"]


def test_overwrite_replaces_outputs_of_train_select_morph_evaluate(data, run_dir, tmp_path, capsys):  # noqa: F811
    ctx = Ctx(tmp_path, data, run_dir, None, None, None)
    argv = _train(ctx, out=tmp_path / "run")
    assert call(capsys, "train", *argv)[0] == 0
    (tmp_path / "run" / "stale.txt").write_text("from the old run")
    code, out, err = call(capsys, "train", *argv, "--overwrite")
    assert code == 0, err
    assert "the run there is replaced (--overwrite)" in out and not (tmp_path / "run" / "stale.txt").exists()
    assert (tmp_path / "run" / "model.pt").is_file() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    for verb, args, out_file in (("select", _select(ctx), tmp_path / "sub.star"),
                                 ("morph", _morph(ctx), tmp_path / "m.pdb"),
                                 ("evaluate", _evaluate(ctx), tmp_path / "scores.json")):
        assert call(capsys, verb, *args)[0] == 0
        stamp = out_file.stat().st_mtime_ns
        code, _, err = call(capsys, verb, *args)
        assert_cli_error(code, err, verb, "--overwrite")
        assert out_file.stat().st_mtime_ns == stamp
        code, _, err = call(capsys, verb, *args, "--overwrite")
        assert code == 0 and out_file.stat().st_mtime_ns != stamp, err


def test_failed_overwrite_puts_the_old_run_back(data, tmp_path, capsys, monkeypatch):
    import gmmplat.train.loop as loop

    argv = _train(Ctx(tmp_path, data, None, None, None, None), out=tmp_path / "run")
    assert call(capsys, "train", *argv)[0] == 0
    before = snapshot([tmp_path / "run"])

    def fails(self):
        (self.out).mkdir(parents=True, exist_ok=True)
        (self.out / "checkpoint.pt").write_text("partial")
        raise InputError(self.out, "failed midway")

    from gmmplat.errors import InputError

    monkeypatch.setattr(loop.Trainer, "run", fails)
    code, _, err = call(capsys, "train", *argv, "--overwrite")
    assert_cli_error(code, err, "train", "failed midway")
    assert snapshot([tmp_path / "run"]) == before and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
