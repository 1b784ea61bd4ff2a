"""Domain masks by volume, atom selection and index; stored as mask__<name>; bad selections are errors."""
from __future__ import annotations

import numpy as np
import pytest

from gmmplat.errors import ConfigError, InputError
from gmmplat.io import read_map, read_model, write_map
from gmmplat.model.gmm import GMM
from gmmplat.model.masks import (add_mask, apply_mask_spec, mask_from_atoms, mask_from_indices, mask_from_map,
                                 parse_mask_spec)
from gmmplat.neutral import build_from_map, build_from_model
from test_build_helpers import APIX, BOX, ORIGIN, bundle, third_helix_residues, write_model, write_model_map


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("masks")
    model = bundle()
    write_model(d / "model.pdb", model)
    write_model_map(d / "map.mrc", model)
    mp = read_map(d / "map.mrc")
    return model, d, build_from_model(read_model(d / "model.pdb", selection="ca"), mp, 6.0), mp


def test_volume_mask_selects_centres_inside(built, tmp_path):
    model, d, gmm, mp = built
    vol = np.zeros((BOX, BOX, BOX), np.float32)
    vol[:, :, BOX // 2:] = 1.0  # x index >= M//2, i.e. x >= 0 Å in the box frame (up to half a voxel)
    write_map(tmp_path / "half.mrc", vol, APIX, ORIGIN)
    sel = mask_from_map(gmm, read_map(tmp_path / "half.mrc"), path=tmp_path / "half.mrc")
    x = gmm.params[:, 0].numpy()
    np.testing.assert_array_equal(sel, np.rint(x / APIX) >= 0)
    assert 0 < sel.sum() < gmm.n


def test_volume_mask_of_other_box_or_pixel_size_is_an_error(built, tmp_path):
    model, d, gmm, mp = built
    write_map(tmp_path / "small.mrc", np.ones((BOX - 2,) * 3, np.float32), APIX, ORIGIN)
    with pytest.raises(InputError, match="box") as e:
        apply_mask_spec(gmm, f"dom=map:{tmp_path / 'small.mrc'}")
    assert str(tmp_path / "small.mrc") in str(e.value) and "\n" not in str(e.value)
    write_map(tmp_path / "apix.mrc", np.ones((BOX,) * 3, np.float32), APIX * 1.1, ORIGIN)
    with pytest.raises(InputError, match="pixel size"):
        apply_mask_spec(gmm, f"dom=map:{tmp_path / 'apix.mrc'}")
    write_map(tmp_path / "empty.mrc", np.zeros((BOX,) * 3, np.float32), APIX, ORIGIN)
    with pytest.raises(InputError, match="selects no Gaussian"):
        apply_mask_spec(gmm, f"dom=map:{tmp_path / 'empty.mrc'}@0.5")


def test_residue_mask_through_atom_to_gaussian(built):
    model, d, gmm, mp = built
    g = GMM(gmm.params, gmm.box, gmm.pixel_size_angstrom, gmm.box_centre_world_angstrom, dict(gmm.extras))
    res = third_helix_residues(model)
    sel = apply_mask_spec(g, f"helix3=chain:A:{res.min()}-{res.max()}", d / "model.pdb")
    # Gaussian i is residue i + 1 in a Cα build
    np.testing.assert_array_equal(np.nonzero(sel)[0], res - 1)
    assert "helix3" in g.masks() and np.array_equal(g.masks()["helix3"], sel)
    sel2 = apply_mask_spec(g, "whole=chain:A", d / "model.pdb")
    assert sel2.all()


def test_residue_mask_majority_rule_for_kmeans_build(built):
    model, d, gmm, mp = built
    atoms = read_model(d / "model.pdb", selection="heavy")
    km = build_from_model(atoms, mp, 6.0, n_gaussians=12, seed=0)
    chosen = read_model(d / "model.pdb", residues="A:1-10").atom_index
    sel = mask_from_atoms(km, chosen)
    a2g = km.extras["atom_to_gaussian"]
    for gi in range(km.n):
        members = np.nonzero(a2g == gi)[0]
        frac = np.isin(members, chosen).mean()
        assert sel[gi] == (frac >= 0.5)


def test_selection_errors(built):
    model, d, gmm, mp = built
    with pytest.raises(InputError, match="matches no atoms"):
        apply_mask_spec(gmm, "x=chain:Z", d / "model.pdb")
    with pytest.raises(ConfigError, match="no atomic model"):
        apply_mask_spec(gmm, "x=chain:A")
    pseudo = build_from_map(mp, 6.0)
    with pytest.raises(ConfigError, match="without an atomic model"):
        apply_mask_spec(pseudo, "x=chain:A", d / "model.pdb")
    with pytest.raises(ConfigError, match="selects no Gaussian"):
        add_mask(gmm, "none", np.zeros(gmm.n, bool))
    with pytest.raises(ConfigError):
        parse_mask_spec("nokind")
    with pytest.raises(ConfigError, match="unknown kind"):
        parse_mask_spec("a=atoms:1-3")


def test_index_mask():
    g = GMM.from_arrays(np.zeros((10, 3)), 1.0, 1.0, 16, 1.0)
    sel = apply_mask_spec(g, "first=index:0-4,7")
    assert list(np.nonzero(sel)[0]) == [0, 1, 2, 3, 4, 7] and g.extras["mask__first"].dtype == bool
    with pytest.raises(ConfigError, match="0..9"):
        mask_from_indices(g, [3, 10])
