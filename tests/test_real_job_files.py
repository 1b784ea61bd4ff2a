"""Files as real RELION jobs write them, through the command line.

* a particle stack without the ``MAP `` ID string and with machine stamp 0 (RELION 3.1);
* a RELION 3.0 STAR file without rlnAmplitudeContrast, rlnVoltage, rlnSphericalAberration
  (typical of files converted from cryoSPARC): refused with the options to give, then
  read with ``--amplitude-contrast``/``--voltage``/``--cs-mm``, each value printed;
* a STAR file moved away from its project: found again with ``--datadir``.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile
from factories import assert_one_line_error
from test_train_fixtures import make_dataset, one_thread  # noqa: F401

from gmmplat import cli
from gmmplat.errors import InputError
from gmmplat.io.mrc import read_map, write_map
from gmmplat.io.stacks import StackReader
from gmmplat.io.star import read_particle_star


def strip_map_id(path: Path) -> None:
    """Zero the ``MAP `` ID string and the machine stamp (header bytes 208-215)."""
    blob = bytearray(path.read_bytes())
    blob[208:216] = b"\0" * 8
    path.write_bytes(bytes(blob))


def test_stack_without_map_id_is_read(tmp_path):
    data = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(np.float32)
    with mrcfile.new(tmp_path / "s.mrcs") as m:
        m.set_data(data)
        m.voxel_size = 2.0
    strip_map_id(tmp_path / "s.mrcs")
    with pytest.raises(ValueError, match="Map ID string not found"):
        mrcfile.open(tmp_path / "s.mrcs").close()  # the file really lacks the ID
    import pandas as pd

    table = pd.DataFrame({"stack_path": [str(tmp_path / "s.mrcs")] * 3, "image_index": [0, 1, 2],
                          "pixel_size_angstrom": 2.0, "box_size": 8.0})
    with StackReader(table) as reader:
        np.testing.assert_array_equal(reader[[2, 0]], data[[2, 0]])
    write_map(tmp_path / "m.mrc", np.ones((4, 4, 4)), 1.5)
    strip_map_id(tmp_path / "m.mrc")
    assert read_map(tmp_path / "m.mrc").voxel_size_angstrom == 1.5
    # still refused: an unknown data mode (what a non-MRC file looks like)
    blob = bytearray((tmp_path / "m.mrc").read_bytes())
    blob[12:16] = np.int32(77).tobytes()
    (tmp_path / "bad.mrc").write_bytes(bytes(blob))
    with pytest.raises(InputError) as e:
        read_map(tmp_path / "bad.mrc")
    assert_one_line_error(e, tmp_path / "bad.mrc", "not a valid MRC file", "mode 77")


@pytest.fixture(scope="module")
def moved_project(tmp_path_factory):
    """project/Extract/job007/stack.mrcs (no MAP ID); elsewhere/particles.star (3.0, no Q0/kV/Cs)."""
    root = tmp_path_factory.mktemp("real")
    star, gmm, _ = make_dataset(root / "made", n=16, snr=None)
    job = root / "project" / "Extract" / "job007"
    job.mkdir(parents=True)
    shutil.move(str(root / "made" / "stack.mrcs"), job / "stack.mrcs")
    strip_map_id(job / "stack.mrcs")
    blocks = starfile.read(star, always_dict=True)
    optics, part = blocks["optics"], blocks["particles"]
    part = part.drop(columns=["rlnOpticsGroup"])
    part["rlnImageName"] = [f"{i + 1:06d}@Extract/job007/stack.mrcs" for i in range(len(part))]
    part["rlnOriginX"] = part.pop("rlnOriginXAngst") / 4.0
    part["rlnOriginY"] = part.pop("rlnOriginYAngst") / 4.0
    part["rlnMagnification"] = 10000.0
    part["rlnDetectorPixelSize"] = float(optics["rlnImagePixelSize"].iloc[0])
    (root / "elsewhere").mkdir()
    starfile.write({"": part}, root / "elsewhere" / "particles.star")
    return root, gmm


def train(argv, tmp_path, capsys):
    code = cli.main(["train", "--gmm", str(argv[0]), "--preset", "rigid", "--domain", "domain", "--epochs", "1",
                     "--batch-size", "8", "--latent-dim", "2", "--no-progress", "--out", str(tmp_path / "run"),
                     *map(str, argv[1:])])
    out = capsys.readouterr()
    return code, out.out, out.err.strip()


def test_relion30_star_moved_from_its_project(moved_project, tmp_path, capsys):
    root, gmm = moved_project
    star = root / "elsewhere" / "particles.star"
    assert read_particle_star(star, require_ctf=False).version == "3.0"
    code, out, err = train([gmm, "--star", star], tmp_path, capsys)
    assert code == 2 and "\n" not in err, err
    assert "missing CTF column(s): rlnVoltage, rlnSphericalAberration, rlnAmplitudeContrast" in err
    assert "--voltage, --cs-mm, --amplitude-contrast" in err

    ctf = ["--amplitude-contrast", "0.1", "--voltage", "300", "--cs-mm", "2.7"]
    code, out, err = train([gmm, "--star", star, *ctf], tmp_path, capsys)
    assert code == 2 and "\n" not in err and "stack.mrcs: file not found" in err, err

    code, out, err = train([gmm, "--star", star, *ctf, "--project-dir", root / "project"], tmp_path, capsys)
    assert code == 0, err
    for line in ("no rlnAmplitudeContrast; using --amplitude-contrast 0.1 for every particle",
                 "no rlnVoltage; using --voltage 300 for every particle",
                 "no rlnSphericalAberration; using --cs-mm 2.7 for every particle"):
        assert line in out, out
    assert "done:" in out
    # the run remembers how its particles were read (analyze/select read them the same way)
    from gmmplat.train import load_run

    data = load_run(tmp_path / "run").config.data
    assert data.particle_options == {"datadir": str(root / "project"), "amplitude_contrast": 0.1,
                                     "voltage_kv": 300.0, "cs_mm": 2.7}
    assert len(data.source().read().table) == 16
