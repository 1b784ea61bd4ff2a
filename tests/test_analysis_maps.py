"""Decoded maps at latent points, written in the consensus map's world frame."""
from __future__ import annotations

import numpy as np
import torch

from gmmplat.analysis.maps import decoded_map, decoded_maps, map_origin_angstrom, write_volume
from gmmplat.io.mrc import box_centre_world_angstrom, read_map
from gmmplat.model.gmm import GMM


def _gmm():
    xyz = np.array([[0.0, 0.0, 0.0], [8.0, -4.0, 2.0], [-6.0, 5.0, -3.0]])
    return GMM.from_arrays(xyz, 1.0, 3.0, 32, 2.0, box_centre_world_angstrom=np.array([100.0, 110.0, 90.0]))


def _decode_fn(gmm):
    def decode_fn(z):  # z (B, 1): translate every Gaussian along x by 4 Å per unit
        out = gmm.params[None].repeat(z.shape[0], 1, 1).clone()
        out[..., 0] += 4.0 * z[:, :1]
        return out

    return decode_fn


def test_decoded_map_follows_the_decoder():
    gmm = _gmm()
    maps = decoded_maps(_decode_fn(gmm), np.array([[0.0], [1.0]]), gmm.box, gmm.pixel_size_angstrom)
    assert maps.shape == (2, 32, 32, 32)
    # the map at z=1 is the map at z=0 moved by 2 voxels along x ([z, y, x] indexing)
    np.testing.assert_allclose(maps[1].numpy(), torch.roll(maps[0], 2, dims=2).numpy(), atol=1e-4)
    # peak of the first Gaussian (at the box centre, amplitude 1) at voxel (16, 16, 16) for z=0
    assert abs(float(maps[0][16, 16, 16]) - 1.0) < 0.05
    single = decoded_map(_decode_fn(gmm), [1.0], gmm.box, gmm.pixel_size_angstrom)
    np.testing.assert_allclose(single.numpy(), maps[1].numpy(), atol=1e-6)


def test_written_map_has_the_gmm_world_frame(tmp_path):
    gmm = _gmm()
    vol = decoded_map(_decode_fn(gmm), [0.0], gmm.box, gmm.pixel_size_angstrom)
    write_volume(tmp_path / "m.mrc", vol, gmm.pixel_size_angstrom, map_origin_angstrom(gmm))
    m = read_map(tmp_path / "m.mrc")
    assert m.voxel_size_angstrom == 2.0
    np.testing.assert_allclose(box_centre_world_angstrom(m), gmm.box_centre_world_angstrom)
    # the Gaussian at world (108, 106, 92) sits at the voxel world positions say it does
    idx = np.array([8.0, -4.0, 2.0]) / 2.0 + 16  # x, y, z voxel indices
    assert abs(float(m.data[int(idx[2]), int(idx[1]), int(idx[0])]) - 1.0) < 0.05
