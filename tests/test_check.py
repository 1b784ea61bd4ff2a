"""``gmmplat check`` and the data check before training, through the command line.

The independent RELION-convention fixture (tests/data/relion_convention) must pass with
both its map and its model; copies of it with one mistake each must fail (exit 1) with a
verdict naming that mistake and its fix.  A negated-origin copy of a small training set
stops ``gmmplat train`` (exit 2, one line) unless ``--skip-data-check``.
"""
from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
import torch
from test_train_fixtures import make_dataset, one_thread  # noqa: F401

from gmmplat import cli
from gmmplat.io.star import read_particle_star, write_particle_star
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import image_to_rfft, rfft_to_image

FIXTURE = Path(__file__).parent / "data" / "relion_convention"


def run_check(capsys, star, *extra, out=None):
    out = out or Path(star).parent / "check_out"
    code = cli.main(["check", "--star", str(star), "--map", str(FIXTURE / "consensus.mrc"), "--out", str(out),
                     "--no-progress", *map(str, extra)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def copy_fixture(tmp_path, change_table=None, change_images=None) -> Path:
    """A copy of the fixture's STAR (and stack, when ``change_images``) with one change."""
    star = read_particle_star(FIXTURE / "particles.star")
    table = star.table.copy()
    if change_images is not None:
        with mrcfile.open(FIXTURE / "particles.mrcs", permissive=True) as m:
            data, voxel = np.array(m.data, dtype=np.float32), float(m.voxel_size.x)
        data = change_images(data, table).astype(np.float32)
        stack = tmp_path / "particles.mrcs"
        with mrcfile.new(stack) as m:
            m.set_data(data)
            m.set_image_stack()
            m.voxel_size = voxel
        table["stack_path"] = str(stack)
    if change_table is not None:
        table = change_table(table)
    path = tmp_path / "particles.star"
    write_particle_star(path, table)
    return path


def negate_origins(t):
    t[["shift_x_angstrom", "shift_y_angstrom"]] *= -1
    return t


def swap_origins(t):
    t[["shift_x_angstrom", "shift_y_angstrom"]] = t[["shift_y_angstrom", "shift_x_angstrom"]].to_numpy()
    return t


def transpose_rotations(t):  # A(rot, tilt, psi)^T = A(-psi, -tilt, -rot)
    t[["rot_deg", "tilt_deg", "psi_deg"]] = -t[["psi_deg", "tilt_deg", "rot_deg"]].to_numpy()
    return t


def shuffle_rows(t):
    perm = np.roll(np.arange(len(t)), 7)
    t[["stack_path", "image_index"]] = t[["stack_path", "image_index"]].iloc[perm].to_numpy()
    return t


def phase_flip(images, table):
    ctf = ctf_rfft(CTFParams.from_table(table), images.shape[-1], float(table["pixel_size_angstrom"].iloc[0]))
    F = image_to_rfft(torch.as_tensor(images, dtype=torch.float64)) * torch.sign(ctf.double())
    return rfft_to_image(F, images.shape[-1]).numpy()


@pytest.mark.parametrize("reference", ["map", "model"])
def test_check_passes_on_the_fixture(tmp_path, capsys, reference):
    extra = ["--model", FIXTURE / "model.pdb"] if reference == "model" else []
    code, out, err = run_check(capsys, FIXTURE / "particles.star", *extra, out=tmp_path / "c")
    assert code == 0, out + err
    assert "verdict: PASS" in out and "48 particles" in out
    stated = next(line for line in out.splitlines() if line.startswith("stated conventions"))
    assert float(stated.split()[2]) >= 0.98, stated
    assert (tmp_path / "c" / "check.png").stat().st_size > 1000
    table = (tmp_path / "c" / "check.csv").read_text()
    assert "origin_flipped" in table and "shuffled" in table


MISTAKES = {
    "negated origins": (dict(change_table=negate_origins), "origin sign is flipped", "negate rlnOriginXAngst"),
    "swapped origin columns": (dict(change_table=swap_origins), "x and y columns are swapped",
                               "exchange rlnOriginXAngst and rlnOriginYAngst"),
    "transposed rotations": (dict(change_table=transpose_rotations), "rotations are transposed",
                             "(-psi, -tilt, -rot)"),
    "inverted images": (dict(change_images=lambda d, t: -d), "dark-protein", "pass --invert-contrast"),
    "transposed images": (dict(change_images=lambda d, t: np.swapaxes(d, -1, -2)), "images are transposed",
                          "transposed"),
    "phase-flipped stack": (dict(change_images=phase_flip), "phase-flipped", "without phase flipping"),
    "shuffled rows": (dict(change_table=shuffle_rows), "no better than other rows", "rlnImageName"),
    "inverted images and negated origins": (dict(change_images=lambda d, t: -d, change_table=negate_origins),
                                            "origin sign is flipped and the images are dark-protein",
                                            "negate rlnOriginXAngst", "pass --invert-contrast"),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_check_fails_naming_the_mistake(tmp_path, capsys, mistake):
    change, *needles = MISTAKES[mistake]
    code, out, err = run_check(capsys, copy_fixture(tmp_path, **change))
    verdict = next(line for line in out.splitlines() if line.startswith("verdict:"))
    assert code == 1, out + err
    assert verdict.startswith("verdict: FAIL")
    for needle in needles:
        assert needle in verdict, verdict


def test_invert_contrast_on_white_data_says_remove_it(tmp_path, capsys):
    code, out, _ = run_check(capsys, FIXTURE / "particles.star", "--invert-contrast", out=tmp_path / "c.png")
    assert code == 1 and "remove --invert-contrast" in out
    assert (tmp_path / "c.png").exists() and (tmp_path / "c.csv").exists()
    dark = copy_fixture(tmp_path, change_images=lambda d, t: -d)
    code, out, _ = run_check(capsys, dark, "--invert-contrast")
    assert code == 0 and "verdict: PASS" in out, out


def test_check_passes_on_simulated_sample_data(tmp_path, capsys):
    from gmmplat.synthetic.simulate import simulate_dataset

    simulate_dataset("hinge", tmp_path / "hinge", n_particles=150, seed=3, progress=False)
    star = tmp_path / "hinge" / "particles.star"
    code = cli.main(["check", "--star", str(star), "--map", str(tmp_path / "hinge" / "consensus_map.mrc"),
                     "--out", str(tmp_path / "c"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "verdict: PASS" in out, out
    negated = tmp_path / "negated.star"
    write_particle_star(negated, negate_origins(read_particle_star(star).table.copy()))
    code = cli.main(["check", "--star", str(negated), "--map", str(tmp_path / "hinge" / "consensus_map.mrc"),
                     "--model", str(tmp_path / "hinge" / "neutral_model.pdb"), "--out", str(tmp_path / "c"),
                     "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "origin sign is flipped" in out, out


def test_check_bad_input_is_one_line(tmp_path, capsys):
    code = cli.main(["check", "--star", str(tmp_path / "none.star"), "--map", str(FIXTURE / "consensus.mrc"),
                     "--out", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "none.star: file not found" in err


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train_check")
    star, gmm, _ = make_dataset(folder, n=96, snr=1.0, origin_sd_angstrom=4.0)
    negated = folder / "negated.star"
    write_particle_star(negated, negate_origins(read_particle_star(star).table.copy()))
    return star, negated, gmm


def test_train_stops_on_negated_origins_unless_skipped(train_data, tmp_path, capsys):
    _, negated, gmm = train_data
    argv = ["train", "--star", str(negated), "--gmm", str(gmm), "--preset", "rigid", "--domain", "domain",
            "--epochs", "1", "--batch-size", "32", "--no-progress", "--out", str(tmp_path / "run")]
    code = cli.main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert err.startswith("gmmplat train: error: data check") and "origin sign is flipped" in err, err
    assert "negate rlnOriginXAngst" in err and "--skip-data-check" in err
    assert not (tmp_path / "run").exists()
    code = cli.main([*argv, "--skip-data-check"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "done:" in captured.out and "data check" not in captured.out


def test_pretrain_check_passes_on_correct_data(train_data):
    from gmmplat.check.api import check_before_training
    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.model.gmm import GMM

    star, _, gmm = train_data
    result = check_before_training(ParticleDataset(star), GMM.load(gmm))
    assert result.passed and not result.mistake, result.report()


def test_rows_the_data_cannot_tell_apart_are_left_out(tmp_path):
    """With every origin at zero, the origin rows predict the stated images: they are marked
    untestable and do not make the check fail."""
    from gmmplat.check import GMMReference, run_check
    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.model.gmm import GMM

    star, gmm, _ = make_dataset(tmp_path, n=64, snr=1.0, origin_sd_angstrom=0.0)
    result = run_check(ParticleDataset(star), GMMReference(GMM.load(gmm).params), n=64)
    table = result.table()
    assert not table.loc["origin_flipped", "testable"] and not table.loc["origin_swapped", "testable"]
    assert table.loc["origin_flipped", "similarity"] > 0.999
    assert table.loc["rotation_transposed", "testable"] and table.loc["polarity", "testable"]
    assert result.passed, result.report()


@pytest.mark.parametrize("change, fix", [(None, None), ("negated shifts", "origin sign is flipped"),
                                         ("transposed poses", "rotations are transposed")])
def test_check_takes_cryosparc_files(tmp_path, capsys, change, fix):
    """A .cs made from the fixture by cryoDRGN's mapping passes; negated shifts or transposed poses fail."""
    import shutil

    from test_io_cryosparc import make_cs

    shutil.copy(FIXTURE / "particles.mrcs", tmp_path / "particles.mrcs")
    cs = tmp_path / "particles.cs"
    make_cs(cs, shift_sign=-1.0 if change == "negated shifts" else 1.0, transpose=change == "transposed poses")
    code = cli.main(["check", "--cs", str(cs), "--map", str(FIXTURE / "consensus.mrc"), "--out",
                     str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    if change is None:
        assert code == 0, out
    else:
        assert code == 1, out
        verdict = next(line for line in out.splitlines() if line.startswith("verdict:")).lower()
        assert verdict.startswith("verdict: fail") and fix in verdict, verdict
