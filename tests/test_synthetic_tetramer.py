"""The large sample's molecule: counts, exact C4 symmetry, the four domains' motion."""
import argparse

import numpy as np

from gmmplat.commands.simulate import dataset_options
from gmmplat.physics.geometry import symmetry_operators
from gmmplat.synthetic.motions import DATASETS, get_motion
from gmmplat.synthetic.simulate import render_chunk_size


def test_tetramer_counts_symmetry_and_motion():
    m = get_motion("tetramer")
    model = m.model
    assert "tetramer" not in DATASETS  # not in `simulate all` / the demo
    assert model.n_residues == 4 * 602 and int(model.ca_mask.sum()) == 2408 and model.n_atoms == 11952
    xyz = m.coordinates_batch(np.array([-1.0, 0.0, 0.7]))
    R = symmetry_operators("C4").numpy()
    chains = [xyz[:, model.chain_id == c] for c in "ABCD"]
    for k in range(4):  # every conformation: chain k = chain A turned by k × 90° about z
        assert np.abs(chains[0] @ R[k].T - chains[k]).max() < 1e-9
    moved = np.linalg.norm(xyz[0] - model.xyz, axis=-1)
    assert moved[~m.masks["moving_domain"]].max() < 1e-9 and moved[m.masks["moving_domain"]].max() > 10.0
    assert np.linalg.norm(xyz, axis=-1).max() + 4.0 + 3.0 < 128.0  # fits box 256 at 1 Å/px with shifts


def test_tetramer_defaults_and_render_chunk():
    args = argparse.Namespace(box=None, pixel_size=None, sigma=2.0)
    opts = dataset_options("tetramer", args)
    assert opts == {"box": 256, "pixel_size_angstrom": 1.0, "sigma_angstrom": 2.0, "n_consensus": 5}
    assert dataset_options("hinge", args)["box"] == 64
    assert render_chunk_size(1000, 64) == 128 and render_chunk_size(11952, 256) == 8
