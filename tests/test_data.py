"""ParticleDataset: streaming, symmetry expansion, splits, batch order, input checks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_train_fixtures import make_dataset, make_neutral, one_thread, overwrite_images  # noqa: F401

from gmmplat.errors import ConfigError, InputError
from gmmplat.io.dataset import ParticleDataset, batch_order, shard
from gmmplat.model.gmm import GMM
from gmmplat.physics.geometry import euler_to_matrix, symmetry_operators


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    star, gmm, t = make_dataset(tmp_path_factory.mktemp("data"), n=20, snr=None)
    return star, gmm


def test_symmetry_expansion_order_and_rotations(small_set):
    star, _ = small_set
    plain = ParticleDataset(star)
    c4 = ParticleDataset(star, symmetry="C4")
    assert len(plain) == 20 and len(c4) == 80 and c4.n_sym == 4
    ops = symmetry_operators("C4")
    b = c4.get_batch(np.arange(80))
    assert torch.equal(b.index, torch.arange(20).repeat_interleave(4))
    assert torch.equal(b.sym_index, torch.arange(4).repeat(20))
    t = plain.table
    A = euler_to_matrix(t.rot_deg.to_numpy().copy(), t.tilt_deg.to_numpy().copy(), t.psi_deg.to_numpy().copy())
    for item in (0, 5, 42, 79):
        p, k = item // 4, item % 4
        assert torch.allclose(b.rotations[item].double(), A[p] @ ops[k], atol=1e-6)
        # a copy is a genuinely different orientation (except the identity copy)
        assert (k == 0) == torch.allclose(b.rotations[item].double(), A[p], atol=1e-6)
    # copies share image, shifts and CTF
    assert torch.equal(b.images[4], b.images[7])
    assert torch.equal(b.shifts_angstrom[4], b.shifts_angstrom[7])
    assert b.ctf.defocus_u_angstrom[4] == b.ctf.defocus_u_angstrom[7]
    # D2 has 4 operators too, with flips
    assert len(ParticleDataset(star, symmetry="D2")) == 80
    with pytest.raises(ConfigError):
        ParticleDataset(star, symmetry="X9")


def test_images_match_stack_and_invert_contrast(small_set):
    import mrcfile

    star, _ = small_set
    ds = ParticleDataset(star)
    inv = ParticleDataset(star, invert_contrast=True)
    with mrcfile.open(ds.table.stack_path[0]) as m:
        raw = m.data.copy()
    rows = [3, 0, 3, 17]
    assert np.array_equal(ds.get_batch(rows).images.numpy(), raw[rows])
    assert np.array_equal(inv.get_batch(rows).images.numpy(), -raw[rows])
    assert np.array_equal(ds.get_batch(rows).images.numpy(), raw[rows])  # from the cache now


def test_cache_is_bounded(small_set):
    star, _ = small_set
    one = 24 * 24 * 4
    ds = ParticleDataset(star, cache_mb=5 * one / 2**20, release_mb=2 * one / 2**20)
    for i in range(20):
        ds.get_batch([i])
    assert len(ds._cache) == 5 and ds._cache.bytes <= 5 * one
    assert ds.get_batch([19]).images.shape == (1, 24, 24)


def test_split_by_particle_deterministic(small_set):
    star, _ = small_set
    ds = ParticleDataset(star, symmetry="C3")
    tr, va = ds.split(0.1, seed=7)
    tr2, va2 = ds.split(0.1, seed=7)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert not np.array_equal(va, ds.split(0.1, seed=8)[1])
    assert len(va) == 2 * 3 and len(tr) + len(va) == 60
    assert set(tr // 3).isdisjoint(set(va // 3))  # copies never straddle the split
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(60))


def test_batch_order_and_shards():
    items = np.arange(10, 33)
    a = batch_order(items, 5, (0, 1, 0, 0))
    assert [len(b) for b in a] == [5, 5, 5, 5, 3]
    assert np.array_equal(np.sort(np.concatenate(a)), items)
    assert all(np.array_equal(x, y) for x, y in zip(a, batch_order(items, 5, (0, 1, 0, 0))))
    assert not np.array_equal(np.concatenate(a), np.concatenate(batch_order(items, 5, (0, 1, 0, 1))))
    assert [len(b) for b in batch_order(items, 5, (0,), min_last=4)] == [5, 5, 5, 5]
    b = np.arange(7)
    assert np.array_equal(np.sort(np.concatenate([shard(b, 0, 2), shard(b, 1, 2)])), b)


def test_loader_with_workers_gives_the_same_batches(small_set):
    import pickle

    star, _ = small_set
    ds = ParticleDataset(star, symmetry="C2")
    batches = batch_order(np.arange(len(ds)), 7, (3,))
    ref = list(ds.loader(batches))
    par = list(ds.loader(batches, num_workers=2))
    assert len(ref) == len(par) == 6
    for a, b in zip(ref, par):
        assert torch.equal(a.images, b.images) and torch.equal(a.rotations, b.rotations)
        assert torch.equal(a.index, b.index) and torch.equal(a.sym_index, b.sym_index)
    assert len(ds._cache) > 0 and len(pickle.loads(pickle.dumps(ds))._cache) == 0


def test_nan_and_constant_images_reported(tmp_path):
    star, _, _ = make_dataset(tmp_path, n=12, snr=None)
    ds = ParticleDataset(star)
    overwrite_images(ds.table.stack_path[0], {3: np.nan, 7: 0.5, 9: 0.0})
    ds = ParticleDataset(star)
    with pytest.raises(InputError) as e:
        ds.check_images()
    msg = str(e.value)
    assert "\n" not in msg and str(star) in msg
    # rows counted from 1, as STAR parse errors count them: images 3, 7, 9 (0-based) are rows 4, 8, 10
    assert "NaN/inf values at STAR row(s) 4" in msg and "2 constant image(s) at STAR row(s) 8, 10" in msg
    assert "counted from 1" in msg
    ds.get_batch([0, 1, 2])  # good images read fine
    with pytest.raises(InputError, match=r"constant image\(s\) at STAR row\(s\) 8"):
        ds.get_batch([6, 7])
    with pytest.raises(InputError, match=r"STAR row\(s\) 4 "):
        ds.get_batch([3])


def test_gmm_box_and_pixel_size_checked(small_set, tmp_path):
    star, gmm_path = small_set
    ds = ParticleDataset(star)
    ds.check_gmm(GMM.load(gmm_path), gmm_path)
    for box, apix in ((32, 4.0), (24, 3.0)):
        bad = make_neutral(box, apix)
        with pytest.raises(InputError) as e:
            ds.check_gmm(bad, tmp_path / "bad.npz")
        msg = str(e.value)
        assert "\n" not in msg and "bad.npz" in msg and "24 px at 4 Å/px" in msg
