"""Particle stacks: lazy memory-mapped reads, LRU of open stacks, validation."""
from __future__ import annotations

import gc
import os

import mrcfile
import numpy as np
import pandas as pd
import pytest

from gmmplat.errors import InputError
from gmmplat.io import StackReader, read_particle_star
from gmmplat.io.star import TABLE_COLUMNS
from factories import assert_one_line_error


def _stack(path, n, m=8, voxel=1.5, offset=0.0, ny=None):
    """Stack whose image i is filled with offset + i."""
    data = (offset + np.arange(n, dtype=np.float32))[:, None, None] * np.ones((n, ny or m, m), np.float32)
    with mrcfile.new(path, overwrite=True) as f:
        f.set_data(data)
        f.set_image_stack()
        f.voxel_size = voxel
    return path


def _table(rows, pixel=1.5, box=np.nan):
    """Particle table from (stack_path, 0-based index) pairs."""
    t = pd.DataFrame({c: 0.0 for c in TABLE_COLUMNS}, index=range(len(rows)))
    t["stack_path"] = [str(p) for p, _ in rows]
    t["image_index"] = [i for _, i in rows]
    t["pixel_size_angstrom"] = pixel
    t["box_size"] = box
    t["optics_group"] = 1
    return t


def test_reads_images_in_requested_order_across_stacks(tmp_path):
    a = _stack(tmp_path / "a.mrcs", 5, offset=0)
    b = _stack(tmp_path / "b.mrcs", 3, offset=100)
    reader = StackReader(_table([(a, 4), (b, 0), (a, 1), (b, 2)]))
    assert len(reader) == 4 and reader.box_size == 8
    imgs = reader[[3, 0, 1, 2]]
    assert imgs.dtype == np.float32 and imgs.shape == (4, 8, 8)
    np.testing.assert_array_equal(imgs[:, 0, 0], [102, 4, 100, 1])
    assert reader[2].shape == (1, 8, 8) and reader[2][0, 0, 0] == 1
    np.testing.assert_array_equal(reader[1:3][:, 0, 0], [100, 1])
    np.testing.assert_array_equal(reader[np.array([0, 0])][:, 0, 0], [4, 4])
    assert reader[[]].shape == (0, 8, 8)
    assert reader.info(a).n_images == 5 and reader.info(b).voxel_size_angstrom == pytest.approx(1.5)
    reader.close()


def test_from_relion_star(tmp_path):
    stacks = tmp_path / "Particles"
    stacks.mkdir()
    _stack(stacks / "s.mrcs", 3, m=8, voxel=2.0, offset=10)
    (tmp_path / "p.star").write_text(
        "data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n_rlnImageSize\n_rlnVoltage\n"
        "_rlnSphericalAberration\n_rlnAmplitudeContrast\n1 2.0 8 300 2.7 0.1\n\n"
        "data_particles\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n_rlnDefocusU\n"
        "_rlnDefocusV\n_rlnDefocusAngle\n_rlnOpticsGroup\n"
        "3@Particles/s.mrcs 0 0 0 1e4 1e4 0 1\n1@Particles/s.mrcs 0 0 0 1e4 1e4 0 1\n")
    with StackReader(read_particle_star(tmp_path / "p.star"), max_open=2) as reader:
        np.testing.assert_array_equal(reader[[0, 1]][:, 3, 3], [12, 10])


def test_lru_keeps_at_most_k_stacks_open(tmp_path):
    paths = [_stack(tmp_path / f"s{k}.mrcs", 2, offset=10 * k) for k in range(4)]
    reader = StackReader(_table([(p, i) for p in paths for i in range(2)]), max_open=2)
    for row in [0, 2, 4, 6, 1, 7, 3]:
        assert reader[row][0, 0, 0] == 10 * (row // 2) + row % 2
        assert len(reader._open) <= 2
    np.testing.assert_array_equal(reader[list(range(8))][:, 0, 0], [0, 1, 10, 11, 20, 21, 30, 31])
    assert len(reader._open) <= 2
    reader.close()
    assert not reader._open


def test_single_2d_image_counts_as_one_image(tmp_path):
    path = tmp_path / "one.mrc"
    with mrcfile.new(path) as f:
        f.set_data(np.full((8, 8), 7.0, np.float32))
        f.voxel_size = 1.5
    reader = StackReader(_table([(path, 0)]))
    assert reader[0].shape == (1, 8, 8) and reader[0][0, 0, 0] == 7
    bad = StackReader(_table([(path, 1)]))
    with pytest.raises(InputError) as e:
        bad[0]
    assert_one_line_error(e, path, "image 2", "1 image")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_reading_one_image_does_not_load_the_stack(tmp_path):
    n, m = 2000, 64  # 32 MiB of float32
    path = tmp_path / "big.mrcs"
    with mrcfile.new_mmap(path, shape=(n, m, m), mrc_mode=2) as f:
        f.data[:] = 1.0
        f.set_image_stack()
        f.voxel_size = 1.5
    gc.collect()
    reader = StackReader(_table([(path, i) for i in range(n)]))
    assert os.path.getsize(path) > 30 * 2**20
    before = _rss_bytes() if os.path.exists("/proc/self/statm") else None
    img = reader[0]
    assert img.shape == (1, m, m) and img[0, 0, 0] == 1.0
    assert isinstance(reader._handle(0), np.memmap)  # the stack is memory-mapped, not read
    if before is not None:
        grew = _rss_bytes() - before
        assert grew < 8 * 2**20, f"resident memory grew by {grew / 2**20:.1f} MiB reading one image"
    reader.close()


# ------------------------------------------------------------------ bad input

def _read_error(table, rows=0, **kw):
    reader = StackReader(table, **kw)
    with pytest.raises(InputError) as e:
        reader[rows]
    return e


def test_missing_stack(tmp_path):
    path = tmp_path / "gone.mrcs"
    assert_one_line_error(_read_error(_table([(path, 0)])), path, "not found")


def test_truncated_stack(tmp_path):
    path = _stack(tmp_path / "cut.mrcs", 10)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    assert_one_line_error(_read_error(_table([(path, 0)])), path, "truncated")


def test_not_an_mrc_stack(tmp_path):
    path = tmp_path / "junk.mrcs"
    path.write_bytes(b"junk" * 1000)
    assert_one_line_error(_read_error(_table([(path, 0)])), path, "not a valid MRC")


def test_non_square_images(tmp_path):
    path = _stack(tmp_path / "rect.mrcs", 2, m=8, ny=6)
    assert_one_line_error(_read_error(_table([(path, 0)])), path, "not square")


def test_index_beyond_stack_names_stack_and_1_based_index(tmp_path):
    path = _stack(tmp_path / "s.mrcs", 5)
    e = _read_error(_table([(path, 0), (path, 11)]))  # rlnImageName 12@s.mrcs
    assert_one_line_error(e, path, "image 12", "5 image")


def test_pixel_size_mismatch(tmp_path):
    path = _stack(tmp_path / "s.mrcs", 2, voxel=1.5)
    e = _read_error(_table([(path, 0)], pixel=1.7))
    assert_one_line_error(e, path, "1.7", "1.5", "pixel size")
    StackReader(_table([(path, 0)], pixel=1.51))[0]  # within 1%
    StackReader(_table([(path, 0)], pixel=1.7), check_pixel_size=False)[0]


def test_pixel_size_mismatch_names_the_star_file(tmp_path):
    path = _stack(tmp_path / "s.mrcs", 2, voxel=1.5)
    star = tmp_path / "p.star"
    star.write_text("data_\nloop_\n_rlnImageName\n_rlnAngleRot\n_rlnAngleTilt\n_rlnAnglePsi\n"
                    "_rlnImagePixelSize\n1@s.mrcs 0 0 0 3.0\n")
    e = _read_error(read_particle_star(star, require_ctf=False))
    assert_one_line_error(e, path, str(star), "3", "1.5")


def test_pixel_check_skipped_when_header_voxel_is_zero(tmp_path):
    path = _stack(tmp_path / "s.mrcs", 2, voxel=0.0)
    assert StackReader(_table([(path, 1)], pixel=1.7))[0][0, 0, 0] == 1


def test_box_size_disagreements(tmp_path):
    a = _stack(tmp_path / "a.mrcs", 2, m=8)
    b = _stack(tmp_path / "b.mrcs", 2, m=10)
    assert_one_line_error(_read_error(_table([(a, 0)], box=16)), a, "rlnImageSize 16")
    assert_one_line_error(_read_error(_table([(a, 0), (b, 0)]), rows=[0, 1]), b, "10 x 10", "8 x 8")
