"""cryoSPARC ``.cs`` input against the independent RELION-convention fixture.

The ``.cs`` file is built here from tests/data/relion_convention/particles.star by the
mapping cryoDRGN 4.3.1 uses (``parse_pose_csparc``: A = expmap(pose)ᵀ; shifts in
pixels as they are; ``parse_ctf_csparc``: df1/df2 in Å, angles in radians), with
scipy's rotation vectors (not gmmplat's), and must give the STAR file's batches.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from factories import assert_one_line_error, cs_ctf_fields, save_cs_records
from scipy.spatial.transform import Rotation

from gmmplat import cli
from gmmplat.commands.particle_args import add_particle_arguments, particle_source
from gmmplat.errors import ConfigError, InputError
from gmmplat.io.dataset import ParticleDataset
from gmmplat.io.particles import ParticleSource, read_particles
from gmmplat.io.star import read_particle_star

FIXTURE = Path(__file__).parent / "data" / "relion_convention"


def make_cs(path: Path, blob_path: str = "particles.mrcs", shift_sign: float = 1.0, transpose: bool = False,
            drop: tuple[str, ...] = (), align_psize: float | None = None) -> np.ndarray:
    """Write a .cs file of the fixture's particles (RELION -> cryoSPARC by the cryoDRGN mapping)."""
    t = read_particle_star(FIXTURE / "particles.star").table
    n = len(t)
    euler = t[["rot_deg", "tilt_deg", "psi_deg"]].to_numpy()
    # RELION's A = Rz(psi) Ry(tilt) Rz(rot) (passive ZYZ) is scipy's intrinsic "ZYZ" rotation, transposed
    A = Rotation.from_euler("ZYZ", euler, degrees=True).as_matrix().transpose(0, 2, 1)
    pose = Rotation.from_matrix(A if transpose else A.transpose(0, 2, 1)).as_rotvec()  # A = expmap(pose)ᵀ
    apix = t["pixel_size_angstrom"].to_numpy()
    psize = apix if align_psize is None else np.full(n, align_psize)
    shift_px = shift_sign * t[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy() / psize[:, None]
    fields = {
        "uid": (np.uint64, np.arange(n, dtype=np.uint64) * 7919 + 12345),
        "blob/path": ("S64", np.array([blob_path.encode()] * n)),
        "blob/idx": (np.uint32, t["image_index"].to_numpy()),
        "blob/shape": ((np.uint32, 2), np.tile([64, 64], (n, 1))),
        "blob/psize_A": (np.float32, apix),
        "alignments3D/pose": ((np.float32, 3), pose),
        "alignments3D/shift": ((np.float32, 2), shift_px),
        "alignments3D/psize_A": (np.float32, psize),
        **cs_ctf_fields(t),
        "ctf/phase_shift_rad": (np.float32, np.radians(t["phase_shift_deg"].to_numpy())),
    }
    if align_psize is None:
        drop = (*drop, "alignments3D/psize_A")
    return save_cs_records(path, {k: v for k, v in fields.items() if k not in drop}, n)


def all_batch(source) -> object:
    ds = ParticleDataset(source)
    return ds.get_batch(np.arange(len(ds)))


@pytest.fixture(scope="module")
def star_batch():
    return all_batch(FIXTURE / "particles.star")


def assert_same_batch(a, b):
    torch.testing.assert_close(a.rotations, b.rotations, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.shifts_angstrom, b.shifts_angstrom, atol=1e-4, rtol=0)  # float32 pixels in the .cs
    for name in [f.name for f in dataclasses.fields(a.ctf)]:
        x, y = getattr(a.ctf, name), getattr(b.ctf, name)
        torch.testing.assert_close(x, y, atol=1e-5 * max(1.0, float(x.abs().max())), rtol=0, msg=name)
    torch.testing.assert_close(a.images, b.images, atol=1e-5, rtol=0)


def test_cs_gives_the_star_batches(tmp_path, star_batch):
    make_cs(tmp_path / "particles.cs")
    cs_batch = all_batch(ParticleSource(str(tmp_path / "particles.cs"), datadir=str(FIXTURE)))
    assert_same_batch(star_batch, cs_batch)
    # shifts given at a different alignment pixel size (alignments3D/psize_A) are converted with it
    make_cs(tmp_path / "p2.cs", align_psize=3.0)
    assert_same_batch(star_batch, all_batch(ParticleSource(str(tmp_path / "p2.cs"), datadir=str(FIXTURE))))


def test_reversed_conventions_change_the_batch(tmp_path, star_batch):
    make_cs(tmp_path / "neg.cs", shift_sign=-1.0)
    neg = all_batch(ParticleSource(str(tmp_path / "neg.cs"), datadir=str(FIXTURE)))
    assert (neg.shifts_angstrom + star_batch.shifts_angstrom).abs().max() < 1e-4
    assert (neg.shifts_angstrom - star_batch.shifts_angstrom).abs().max() > 5.0
    make_cs(tmp_path / "tr.cs", transpose=True)
    tr = all_batch(ParticleSource(str(tmp_path / "tr.cs"), datadir=str(FIXTURE)))
    torch.testing.assert_close(tr.rotations, star_batch.rotations.transpose(1, 2), atol=1e-5, rtol=0)
    assert (tr.rotations - star_batch.rotations).abs().amax(dim=(1, 2)).mean() > 0.5


def test_passthrough_join_and_stack_beside_the_file(tmp_path, star_batch):
    shutil.copy(FIXTURE / "particles.mrcs", tmp_path / "particles.mrcs")
    full = make_cs(tmp_path / "full.cs")
    pose_only = [f for f in full.dtype.names if f.startswith("alignments3D") or f == "uid"]
    rest = [f for f in full.dtype.names if f not in pose_only or f == "uid"]
    with open(tmp_path / "particles.cs", "wb") as fh:
        np.save(fh, full[pose_only])
    with open(tmp_path / "passthrough.cs", "wb") as fh:
        np.save(fh, full[rest][::-1].copy())  # another order: joined by uid
    p = read_particles(tmp_path / "particles.cs", passthrough=tmp_path / "passthrough.cs")
    assert p.version == "cs" and set(full.dtype.names) <= set(p.records.dtype.names)
    np.testing.assert_array_equal(p.records["uid"], full["uid"])
    assert_same_batch(star_batch, all_batch(ParticleSource(str(tmp_path / "particles.cs"),
                                                           passthrough=str(tmp_path / "passthrough.cs"))))


def test_bad_cs_one_line_errors(tmp_path):
    make_cs(tmp_path / "nopose.cs", drop=("alignments3D/pose",))
    with pytest.raises(InputError) as e:
        read_particles(tmp_path / "nopose.cs", datadir=FIXTURE)
    assert_one_line_error(e, tmp_path / "nopose.cs", "missing pose field", "alignments3D/pose")
    make_cs(tmp_path / "noq.cs", drop=("ctf/amp_contrast",))
    with pytest.raises(InputError) as e:
        read_particles(tmp_path / "noq.cs", datadir=FIXTURE)
    assert_one_line_error(e, tmp_path / "noq.cs", "ctf/amp_contrast", "--amplitude-contrast")
    p = read_particles(tmp_path / "noq.cs", datadir=FIXTURE, ctf_defaults={"amplitude_contrast": 0.07})
    assert np.all(p.table["amplitude_contrast"] == 0.07) and "--amplitude-contrast 0.07" in p.notes[0]

    full = make_cs(tmp_path / "full.cs")
    with open(tmp_path / "short_pt.cs", "wb") as fh:
        np.save(fh, full[["uid", "ctf/df1_A"]][1:])
    with open(tmp_path / "main.cs", "wb") as fh:
        np.save(fh, full[[f for f in full.dtype.names if f != "ctf/df1_A"]])
    with pytest.raises(InputError) as e:
        read_particles(tmp_path / "main.cs", passthrough=tmp_path / "short_pt.cs", datadir=FIXTURE)
    assert_one_line_error(e, tmp_path / "short_pt.cs", "1 uid(s)", "not in the passthrough", f"{int(full['uid'][0])}")

    rec = make_cs(tmp_path / "far.cs")
    rec["blob/idx"][5] = 48
    with open(tmp_path / "far.cs", "wb") as fh:
        np.save(fh, rec)
    with pytest.raises(InputError) as e:
        ParticleDataset(ParticleSource(str(tmp_path / "far.cs"), datadir=str(FIXTURE)))
    assert_one_line_error(e, FIXTURE / "particles.mrcs", "image 49 requested", "blob/idx 48", "holds 48 image")

    (tmp_path / "junk.cs").write_text("not numpy")
    with pytest.raises(InputError) as e:
        read_particles(tmp_path / "junk.cs")
    assert_one_line_error(e, tmp_path / "junk.cs", "not a cryoSPARC .cs file")


def run_cli(argv, capsys):
    code = cli.main([*map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def test_train_cli_takes_cs(tmp_path, capsys):
    make_cs(tmp_path / "particles.cs")
    (tmp_path / "gmm.npz").write_bytes(b"")
    (tmp_path / "run.json").write_text(json.dumps({
        "latent_dim": 2, "decoders": {"dom": {"kind": "rigid", "options": {"domains": ["domain"]}}},
        "rounds": [{"decoders": ["dom"], "epochs": 1}]}))
    base = ["train", "--gmm", tmp_path / "gmm.npz", "--config", tmp_path / "run.json", "--out", tmp_path / "r",
            "--print-config"]
    code, out, err = run_cli([*base, "--cs", tmp_path / "particles.cs", "--datadir", FIXTURE, "--voltage", "200"],
                             capsys)
    assert code == 0, err
    data = json.loads(out)["data"]
    assert data["star"] == str(tmp_path / "particles.cs")
    assert data["particle_options"] == {"datadir": str(FIXTURE), "voltage_kv": 200.0}
    for argv, words in (
        (["--star", tmp_path / "particles.cs"], ["give it with --cs"]),
        (["--cs", FIXTURE / "particles.star"], ["--cs expects a cryoSPARC particle file"]),
        (["--star", FIXTURE / "particles.star", "--passthrough", tmp_path / "particles.cs"], ["--passthrough goes with --cs"]),
        (["--cs", tmp_path / "missing.cs"], ["missing.cs", "file not found"]),
    ):
        code, out, err = run_cli([*base, *argv], capsys)
        assert code == 2 and "\n" not in err and err.startswith("gmmplat train: error:"), err
        for w in words:
            assert w in err, err
    code, out, err = run_cli([*base, "--cs", tmp_path / "particles.cs", "--amplitude-contrast", "2"], capsys)
    assert code == 2 and err == "gmmplat train: error: argument --amplitude-contrast: must lie in 0..1, got 2", err
    p = argparse.ArgumentParser()
    add_particle_arguments(p)
    with pytest.raises(InputError, match="--datadir not found"):
        particle_source(p.parse_args(["--cs", str(tmp_path / "particles.cs"), "--datadir", str(tmp_path / "no")]))


def test_run_config_keeps_the_reader_options(tmp_path):
    from gmmplat.train.config import DataConfig

    make_cs(tmp_path / "particles.cs")
    data = DataConfig.from_dict({"star": str(tmp_path / "particles.cs"), "particle_options": {"datadir": str(FIXTURE)}})
    assert data.source().read().version == "cs"
    with pytest.raises(ConfigError, match="particle_options: expected an object with keys among"):
        DataConfig.from_dict({"star": "x.cs", "particle_options": {"data_dir": "."}})
