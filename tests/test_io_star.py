"""RELION particle STAR files: hand-written 3.0 and 3.1 files, round trips, bad input."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from gmmplat.errors import InputError
from gmmplat.io import TABLE_COLUMNS, read_particle_star, write_particle_star
from factories import assert_one_line_error

STAR_31 = """
# version 30001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
_rlnVoltage #4
_rlnSphericalAberration #5
_rlnAmplitudeContrast #6
_rlnImagePixelSize #7
_rlnImageSize #8
_rlnImageDimensionality #9
opticsGroup1            1     0.885000   300.000000     2.700000     0.100000     1.770000           64            2
opticsGroup2            2     0.885000   200.000000     2.000000     0.070000     1.770000           64            2


# version 30001

data_particles

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnImageName #3
_rlnMicrographName #4
_rlnOpticsGroup #5
_rlnAngleRot #6
_rlnAngleTilt #7
_rlnAnglePsi #8
_rlnOriginXAngst #9
_rlnOriginYAngst #10
_rlnDefocusU #11
_rlnDefocusV #12
_rlnDefocusAngle #13
_rlnPhaseShift #14
_rlnCtfBfactor #15
_rlnClassNumber #16
  1012.0  830.0 000001@Particles/stack_a.mrcs MotionCorr/mic1.mrc 1  10.0 20.0 30.0  1.5 -2.0 15000.0 14500.0 45.0 0.0  0.0 1
   200.0  431.0 000002@Particles/stack_a.mrcs MotionCorr/mic1.mrc 2  11.0 21.0 31.0  0.0  0.5 15100.0 14600.0 46.0 5.0 -10.0 2
   512.0  512.0 000001@Particles/stack_b.mrcs MotionCorr/mic2.mrc 1  12.0 22.0 32.0  3.0  1.0 15200.0 14700.0 47.0 0.0  0.0 1

"""

STAR_30 = """
data_

loop_
_rlnImageName #1
_rlnMicrographName #2
_rlnAngleRot #3
_rlnAngleTilt #4
_rlnAnglePsi #5
_rlnOriginX #6
_rlnOriginY #7
_rlnDefocusU #8
_rlnDefocusV #9
_rlnDefocusAngle #10
_rlnVoltage #11
_rlnSphericalAberration #12
_rlnAmplitudeContrast #13
_rlnMagnification #14
_rlnDetectorPixelSize #15
_rlnCtfBfactor #16
_rlnGroupNumber #17
1@stacks/s1.mrcs mic1.mrc  10.0 20.0 30.0  1.0 -2.0 15000.0 14500.0 45.0 300.0 2.7 0.1 100000.0 14.0 5.0 1
2@stacks/s1.mrcs mic1.mrc  11.0 21.0 31.0  0.0  0.5 15100.0 14600.0 46.0 300.0 2.7 0.1 100000.0 14.0 0.0 1
1@stacks/s2.mrcs mic2.mrc  12.0 22.0 32.0  2.0  1.0 15200.0 14700.0 47.0 200.0 2.0 0.07 100000.0 14.0 0.0 2
"""


def _write(tmp_path, text, name="particles.star"):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_read_relion_31(tmp_path):
    star = read_particle_star(_write(tmp_path, STAR_31))
    t = star.table
    assert star.version == "3.1" and list(t.columns) == TABLE_COLUMNS and len(t) == 3
    assert t["stack_path"].tolist() == [str(tmp_path / "Particles/stack_a.mrcs")] * 2 + [
        str(tmp_path / "Particles/stack_b.mrcs")]
    assert t["image_index"].tolist() == [0, 1, 0]
    np.testing.assert_allclose(t[["rot_deg", "tilt_deg", "psi_deg"]].to_numpy()[1], [11, 21, 31])
    np.testing.assert_allclose(t["shift_x_angstrom"], [1.5, 0.0, 3.0])
    np.testing.assert_allclose(t["shift_y_angstrom"], [-2.0, 0.5, 1.0])  # sign as in the file
    np.testing.assert_allclose(t["defocus_u_angstrom"], [15000, 15100, 15200])
    np.testing.assert_allclose(t["voltage_kv"], [300, 200, 300])  # from each particle's optics group
    np.testing.assert_allclose(t["cs_mm"], [2.7, 2.0, 2.7])
    np.testing.assert_allclose(t["amplitude_contrast"], [0.1, 0.07, 0.1])
    np.testing.assert_allclose(t["phase_shift_deg"], [0, 5, 0])
    np.testing.assert_allclose(t["bfactor"], [0, -10, 0])
    np.testing.assert_allclose(t["pixel_size_angstrom"], 1.77)
    assert t["box_size"].tolist() == [64, 64, 64]
    assert t["optics_group"].tolist() == [1, 2, 1]
    assert star.raw_particles["rlnClassNumber"].tolist() == [1, 2, 1]  # original columns kept
    assert set(star.raw) == {"optics", "particles"}


def test_read_relion_30(tmp_path):
    star = read_particle_star(_write(tmp_path, STAR_30))
    t = star.table
    assert star.version == "3.0"
    np.testing.assert_allclose(t["pixel_size_angstrom"], 1.4)  # 14 µm * 1e4 / 100000
    np.testing.assert_allclose(t["shift_x_angstrom"], [1.4, 0.0, 2.8])  # pixels -> Å
    np.testing.assert_allclose(t["shift_y_angstrom"], [-2.8, 0.7, 1.4])
    np.testing.assert_allclose(t["voltage_kv"], [300, 300, 200])
    np.testing.assert_allclose(t["phase_shift_deg"], 0.0)  # absent -> 0
    np.testing.assert_allclose(t["bfactor"], [5, 0, 0])
    assert t["box_size"].isna().all()  # no rlnImageSize in 3.0: filled from the stack later
    assert t["optics_group"].tolist() == [1, 1, 2]  # one group per distinct optics
    assert t["stack_path"].iloc[2] == str(tmp_path / "stacks/s2.mrcs")


def test_read_30_with_image_pixel_size_and_no_origin(tmp_path):
    text = "data_images\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n_rlnImagePixelSize\n" \
           "3@/abs/stack.mrcs 1 2 3 2.5\n"
    t = read_particle_star(_write(tmp_path, text), require_ctf=False).table
    assert t["stack_path"].iloc[0] == "/abs/stack.mrcs" and t["image_index"].iloc[0] == 2
    assert t["pixel_size_angstrom"].iloc[0] == 2.5 and t["shift_x_angstrom"].iloc[0] == 0.0
    assert np.isnan(t["defocus_u_angstrom"].iloc[0])


def _assert_tables_equal(a, b):
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_exact=False, rtol=1e-5, atol=1e-5, check_dtype=False)


@pytest.mark.parametrize("source", [STAR_31, STAR_30])
@pytest.mark.parametrize("version", ["3.1", "3.0"])
def test_round_trip(tmp_path, source, version):
    star = read_particle_star(_write(tmp_path, source))
    out = tmp_path / "sub" / "out.star"
    out.parent.mkdir()
    write_particle_star(out, star.table, version=version, extra_columns=star.raw_particles)
    back = read_particle_star(out)
    assert back.version == version
    _assert_tables_equal(back.table, star.table)  # 3.0 regroups optics by value: same numbering here
    assert back.raw_particles["rlnMicrographName"].tolist() == star.raw_particles["rlnMicrographName"].tolist()
    text = out.read_text()
    assert "../" in text.split("loop_")[-1]  # image names relative to the STAR file's folder
    assert sorted(os.listdir(out.parent)) == ["out.star"]


def test_written_31_file_layout(tmp_path):
    star = read_particle_star(_write(tmp_path, STAR_31))
    out = tmp_path / "out.star"
    write_particle_star(out, star.table)
    text = out.read_text()
    assert text.index("data_optics") < text.index("data_particles")
    assert "000002@Particles/stack_a.mrcs" in text
    import starfile

    raw = starfile.read(out, always_dict=True)
    assert raw["optics"]["rlnOpticsGroup"].tolist() == [1, 2]
    assert raw["optics"]["rlnVoltage"].tolist() == [300, 200]
    assert raw["optics"]["rlnImageSize"].tolist() == [64, 64]
    assert "rlnVoltage" not in raw["particles"].columns
    np.testing.assert_allclose(raw["particles"]["rlnOriginXAngst"], [1.5, 0.0, 3.0])


def test_relion_project_relative_paths(tmp_path):
    """rlnImageName relative to the project folder, STAR two levels down (Refine3D/job012/)."""
    stack = tmp_path / "Extract/job007/Movies/mic1.mrcs"
    stack.parent.mkdir(parents=True)
    stack.write_bytes(b"")
    text = STAR_31.replace("Particles/stack_a.mrcs", "Extract/job007/Movies/mic1.mrcs")
    path = _write(tmp_path, text, "Refine3D/job012/run_data.star")
    t = read_particle_star(path).table
    assert t["stack_path"].iloc[0] == str(stack)
    t2 = read_particle_star(path, project_dir=tmp_path / "elsewhere").table
    assert t2["stack_path"].iloc[0] == str(tmp_path / "elsewhere/Extract/job007/Movies/mic1.mrcs")


# ------------------------------------------------------------------ bad input

def _error(path, **kw):
    with pytest.raises(InputError) as e:
        read_particle_star(path, **kw)
    return e


def test_missing_file(tmp_path):
    path = tmp_path / "nope.star"
    assert_one_line_error(_error(path), path, "not found")


@pytest.mark.parametrize("text", ["", "hello world\nnot a star file\n",
                                  "data_particles\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n1@a.mrcs 1.0 2.0 3.0 4\n"])
def test_unparseable(tmp_path, text):
    path = _write(tmp_path, text)
    e = _error(path)
    assert_one_line_error(e, path)
    assert "STAR" in str(e.value)


def test_binary_file(tmp_path):
    path = tmp_path / "bin.star"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    assert_one_line_error(_error(path), path)


def test_no_particles_block(tmp_path):
    path = _write(tmp_path, STAR_31.split("# version 30001\n\ndata_particles")[0])
    assert_one_line_error(_error(path), path, "no particles block")


@pytest.mark.parametrize("drop", ["_rlnAngleTilt", "_rlnAnglePsi"])
def test_missing_pose_columns(tmp_path, drop):
    path = _write(tmp_path, _drop_column(STAR_30, drop))
    assert_one_line_error(_error(path), path, "pose", drop[1:])
    t = read_particle_star(path, require_poses=False).table
    assert t[{"_rlnAngleTilt": "tilt_deg", "_rlnAnglePsi": "psi_deg"}[drop]].isna().all()


def test_missing_ctf_columns_are_named(tmp_path):
    text = _drop_column(_drop_column(STAR_31, "_rlnDefocusV"), "_rlnDefocusAngle")
    path = _write(tmp_path, text)
    assert_one_line_error(_error(path), path, "CTF", "rlnDefocusV", "rlnDefocusAngle")
    t = read_particle_star(path, require_ctf=False).table
    assert t["defocus_v_angstrom"].isna().all() and not t["defocus_u_angstrom"].isna().any()


def test_missing_voltage_in_optics(tmp_path):
    path = _write(tmp_path, _drop_column(STAR_31, "_rlnVoltage"))
    assert_one_line_error(_error(path), path, "rlnVoltage")


def test_undefined_optics_group(tmp_path):
    text = STAR_31.replace("MotionCorr/mic2.mrc 1 ", "MotionCorr/mic2.mrc 7 ")
    path = _write(tmp_path, text)
    assert_one_line_error(_error(path), path, "optics group", "7")


def test_missing_pixel_size(tmp_path):
    text = _drop_column(_drop_column(STAR_30, "_rlnMagnification"), "_rlnDetectorPixelSize")
    path = _write(tmp_path, text)
    assert_one_line_error(_error(path), path, "pixel size")


def test_bad_image_name_and_values(tmp_path):
    path = _write(tmp_path, STAR_30.replace("2@stacks/s1.mrcs", "0@stacks/s1.mrcs"))
    assert_one_line_error(_error(path), path, "rlnImageName", "row 2")
    path = _write(tmp_path, STAR_30.replace("15100.0", "abc"), "v.star")
    assert_one_line_error(_error(path), path, "rlnDefocusU", "row 2")


def _drop_column(text: str, label: str) -> str:
    """Remove a loop column (header line and the matching field of every row) from STAR text."""
    out, block_labels, position = [], [], None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("data_"):
            block_labels, position = [], None
        if s.startswith("_"):
            name = s.split()[0]
            if name == label:
                position = len(block_labels)
            block_labels.append(name)
            if name == label:
                continue
        elif position is not None and s and not s.startswith(("#", "loop_", "data_")):
            fields = s.split()
            del fields[position]
            line = " ".join(fields)
        out.append(line)
    return "\n".join(out) + "\n"


def test_empty_particles_block(tmp_path):
    path = _write(tmp_path, "data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n1 1.0\n\n"
                            "data_particles\nloop_\n_rlnImageName\n_rlnAngleRot\n")
    assert_one_line_error(_error(path), path, "no particles")
