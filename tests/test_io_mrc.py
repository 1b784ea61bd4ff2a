"""MRC maps: round trip, origin conventions, box centre, atomic writes, bad input."""
from __future__ import annotations

import gzip
import os

import mrcfile
import numpy as np
import pytest

from gmmplat.errors import InputError
from gmmplat.io import MapData, atomic_write_path, box_centre_world_angstrom, read_map, write_map
from factories import assert_one_line_error


def _raw_mrc(path, data, voxel=1.0, origin=(0, 0, 0), start=(0, 0, 0)):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.asarray(data, dtype=np.float32))
        m.voxel_size = voxel
        m.header.origin.x, m.header.origin.y, m.header.origin.z = origin
        m.header.nxstart, m.header.nystart, m.header.nzstart = start


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 6, 7)).astype(np.float32)  # [z, y, x]
    path = tmp_path / "map.mrc"
    write_map(path, data, 1.25, origin_angstrom=(10.0, -20.0, 30.5))
    m = read_map(path)
    assert isinstance(m, MapData)
    assert m.data.dtype == np.float32 and m.data.shape == (5, 6, 7)
    np.testing.assert_array_equal(m.data, data)
    assert m.voxel_size_angstrom == pytest.approx(1.25)
    np.testing.assert_allclose(m.origin_angstrom, [10.0, -20.0, 30.5])
    assert m.shape_xyz == (7, 6, 5)
    # header written as other programs expect: x is the fastest axis
    with mrcfile.open(path) as raw:
        assert (int(raw.header.nx), int(raw.header.ny), int(raw.header.nz)) == (7, 6, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.mrc"]  # no temporary left


def test_origin_from_nxstart_when_origin_zero(tmp_path):
    path = tmp_path / "start.mrc"
    _raw_mrc(path, np.zeros((4, 4, 4)), voxel=2.0, start=(-2, 3, 5))
    np.testing.assert_allclose(read_map(path).origin_angstrom, [-4.0, 6.0, 10.0])


def test_origin_fields_take_precedence_over_nxstart(tmp_path):
    path = tmp_path / "both.mrc"
    _raw_mrc(path, np.zeros((4, 4, 4)), voxel=2.0, origin=(1.0, 2.0, 3.0), start=(10, 10, 10))
    np.testing.assert_allclose(read_map(path).origin_angstrom, [1.0, 2.0, 3.0])


def test_box_centre_world_per_axis_even_and_odd(tmp_path):
    # x: 7 (odd) -> index 3, y: 6 (even) -> 3, z: 5 (odd) -> 2
    m = MapData(np.zeros((5, 6, 7), np.float32), 2.0, np.array([10.0, 20.0, 30.0]))
    np.testing.assert_allclose(box_centre_world_angstrom(m), [16.0, 26.0, 34.0])
    # independent path: world position of the voxel holding a marker at [z, y, x] = [M//2 ...]
    data = np.zeros((5, 6, 7), np.float32)
    data[5 // 2, 6 // 2, 7 // 2] = 1.0
    write_map(tmp_path / "c.mrc", data, 2.0, (10.0, 20.0, 30.0))
    back = read_map(tmp_path / "c.mrc")
    k, j, i = np.argwhere(back.data == 1.0)[0]
    world = back.origin_angstrom + np.array([i, j, k]) * back.voxel_size_angstrom
    np.testing.assert_allclose(box_centre_world_angstrom(back), world)


def test_integer_mode_and_gzip_are_read_as_float32(tmp_path):
    path = tmp_path / "int.mrc"
    with mrcfile.new(path) as m:
        m.set_data(np.arange(8, dtype=np.int16).reshape(2, 2, 2))
        m.voxel_size = 1.0
    gz = tmp_path / "int.mrc.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    for p in (path, gz):
        d = read_map(p).data
        assert d.dtype == np.float32
        np.testing.assert_array_equal(d.ravel(), np.arange(8))


def test_write_replaces_existing_file_atomically(tmp_path):
    path = tmp_path / "m.mrc"
    write_map(path, np.zeros((2, 2, 2)), 1.0)
    write_map(path, np.ones((3, 3, 3)), 1.0)
    assert read_map(path).data.shape == (3, 3, 3)
    assert os.listdir(tmp_path) == ["m.mrc"]


def test_atomic_write_path_cleans_up_on_failure(tmp_path):
    final = tmp_path / "keep.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write_path(final) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".txt" and not tmp.exists()
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert final.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]
    with atomic_write_path(final) as tmp:
        tmp.write_text("new")
    assert final.read_text() == "new" and os.listdir(tmp_path) == ["keep.txt"]


# ------------------------------------------------------------------ bad input

def test_missing_file(tmp_path):
    path = tmp_path / "nope.mrc"
    with pytest.raises(InputError) as e:
        read_map(path)
    assert_one_line_error(e, path, "not found")


def test_not_an_mrc_file(tmp_path):
    path = tmp_path / "junk.mrc"
    path.write_bytes(b"this is not an MRC file\n" * 100)
    with pytest.raises(InputError) as e:
        read_map(path)
    assert_one_line_error(e, path, "not a valid MRC")


@pytest.mark.parametrize("keep", [0.5, 0.1])
def test_truncated_file(tmp_path, keep):
    full = tmp_path / "full.mrc"
    write_map(full, np.zeros((10, 12, 14)), 1.0)
    blob = full.read_bytes()
    path = tmp_path / "cut.mrc"
    path.write_bytes(blob[: int(len(blob) * keep)])
    with pytest.raises(InputError) as e:
        read_map(path)
    assert_one_line_error(e, path)
    assert "truncated" in str(e.value) or "not a valid MRC" in str(e.value)


def test_zero_voxel_size(tmp_path):
    path = tmp_path / "zero.mrc"
    _raw_mrc(path, np.zeros((4, 4, 4)), voxel=0.0)
    with pytest.raises(InputError) as e:
        read_map(path)
    assert_one_line_error(e, path, "voxel size")
