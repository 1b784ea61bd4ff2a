"""Neutral GMM from a model, a map, or both: frames, amplitudes, widths, pseudoatoms, combination."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gmmplat.neutral import (build_combined, build_from_map, build_from_model, default_threshold, merge, model_mask,
                           sigma_for_resolution)
from gmmplat.io import read_map, read_model, write_map
from gmmplat.model.gmm import GMM, render_map
from gmmplat.neutral.from_map import density_voxels
from test_build_helpers import (APIX, BOX, CENTRE_WORLD, ORIGIN, bundle, third_helix_residues, write_model,
                                write_model_map)


@pytest.fixture(scope="module")
def bundle_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundle")
    model = bundle()
    write_model(d / "model.pdb", model)
    write_model_map(d / "map.mrc", model)
    return model, d / "model.pdb", d / "map.mrc"


def test_model_build_reproduces_world_coordinates(bundle_files, tmp_path):
    model, pdb, mrc = bundle_files
    atoms = read_model(pdb, selection="heavy")
    gmm = build_from_model(atoms, read_map(mrc), 6.0)
    assert gmm.n == len(atoms)
    np.testing.assert_allclose(gmm.box_centre_world_angstrom, ORIGIN + BOX // 2 * APIX)
    np.testing.assert_allclose(gmm.world_xyz_angstrom(), atoms.xyz_angstrom, atol=2e-3)
    np.testing.assert_allclose(gmm.params[:, :3].numpy(), model.xyz, atol=2e-3)  # box frame = model frame here
    gmm.save(tmp_path / "g.npz")
    back = GMM.load(tmp_path / "g.npz")
    np.testing.assert_array_equal(back.extras["atom_to_gaussian"], gmm.extras["atom_to_gaussian"])
    np.testing.assert_array_equal(back.extras["origin"], np.zeros(gmm.n))


def test_single_atom_lands_on_its_voxel(tmp_path):
    """Independent frame check: the rendered GMM peaks at the voxel whose world position is the atom's."""
    import gemmi

    ijk = np.array([20, 9, 13])  # x, y, z voxel indices
    world = ORIGIN + ijk * APIX
    st = gemmi.Structure()
    m, ch, res, at = gemmi.Model(1), gemmi.Chain("A"), gemmi.Residue(), gemmi.Atom()
    res.name, res.seqid = "GLY", gemmi.SeqId(1, " ")
    at.name, at.element, at.pos = "CA", gemmi.Element("C"), gemmi.Position(*world)
    res.add_atom(at), ch.add_residue(res), m.add_chain(ch), st.add_model(m)
    st.write_pdb(str(tmp_path / "one.pdb"))
    vol = np.zeros((BOX, BOX, BOX), np.float32)
    vol[ijk[2], ijk[1], ijk[0]] = 1.0
    write_map(tmp_path / "m.mrc", vol, APIX, ORIGIN)
    gmm = build_from_model(read_model(tmp_path / "one.pdb"), read_map(tmp_path / "m.mrc"), 6.0)
    rendered = render_map(gmm.params, BOX, APIX).numpy()
    assert np.unravel_index(np.argmax(rendered), rendered.shape) == tuple(ijk[::-1])
    assert gmm.amplitude.item() == 6.0  # carbon: 6 electrons


def test_sigma_rule_transform_falls_to_1_over_e_at_resolution():
    d = 8.0
    p = torch.tensor([[0.0, 0.0, 0.0, 1.0, sigma_for_resolution(d)]])
    vol = render_map(p, 32, 1.0).numpy()
    F = np.abs(np.fft.fftn(vol))
    k = int(round(32 * 1.0 / d))  # Fourier pixel of 1/d
    assert F[0, 0, k] / F[0, 0, 0] == pytest.approx(math.exp(-1), rel=1e-3)


def test_kmeans_build_keeps_mass_and_mapping(bundle_files):
    model, pdb, mrc = bundle_files
    atoms = read_model(pdb, selection="heavy")
    s0 = sigma_for_resolution(6.0)
    gmm = build_from_model(atoms, read_map(mrc), 6.0, n_gaussians=20, seed=1)
    assert gmm.n == 20 and "bonds" not in gmm.extras  # centres are not Cα atoms
    a, s = gmm.amplitude.double().numpy(), gmm.sigma_angstrom.double().numpy()
    electrons = np.array([{"C": 6, "N": 7, "O": 8}[e] for e in atoms.element])
    assert np.sum(a * s**3) == pytest.approx(electrons.sum() * s0**3, rel=1e-4)
    a2g = gmm.extras["atom_to_gaussian"]
    assert a2g.shape == (atoms.n_atoms_total,) and set(a2g[atoms.atom_index]) == set(range(20))
    for g in range(20):  # each centre is the electron-weighted mean of its atoms
        mine = a2g[atoms.atom_index] == g
        expect = np.average(atoms.xyz_angstrom[mine], axis=0, weights=electrons[mine]) - CENTRE_WORLD
        np.testing.assert_allclose(gmm.params[g, :3].numpy(), expect, atol=1e-3)


def test_ca_selection_maps_only_ca_atoms_and_has_graph(bundle_files):
    model, pdb, mrc = bundle_files
    atoms = read_model(pdb, selection="ca")
    gmm = build_from_model(atoms, read_map(mrc), 6.0)
    a2g = gmm.extras["atom_to_gaussian"]
    full = read_model(pdb)
    assert np.all(a2g[full.atom_name != "CA"] == -1)
    assert np.array_equal(a2g[full.atom_name == "CA"], np.arange(model.n_residues))
    assert len(gmm.extras["bonds"]) == model.n_residues - 1


def test_pseudoatoms_land_inside_density(bundle_files):
    model, pdb, mrc = bundle_files
    mp = read_map(mrc)
    thr = default_threshold(mp.data)
    gmm = build_from_map(mp, 6.0)
    assert np.all(gmm.extras["origin"] == 1) and gmm.n > 10
    ijk = np.rint(gmm.params[:, :3].numpy() / APIX).astype(int) + BOX // 2
    values = mp.data[ijk[:, 2], ijk[:, 1], ijk[:, 0]]
    assert np.mean(values > thr) >= 0.9
    # every centre is within 3 Å of an atom of the model
    d = np.linalg.norm(gmm.params[:, None, :3].numpy() - model.xyz[None], axis=-1).min(1)
    assert d.max() < 3.0
    # total mass (map units) matches the density above threshold
    mass = (gmm.amplitude * (2 * math.pi * gmm.sigma_angstrom**2) ** 1.5).sum().item()
    idx, rho = density_voxels(mp, thr, 6.0)
    assert mass == pytest.approx(rho.sum() * APIX**3, rel=1e-3)


def test_combined_build_covers_deleted_helix_and_leaves_model_alone(tmp_path):
    model = bundle()
    gone = np.isin(model.res_seq, third_helix_residues(model))
    write_model(tmp_path / "partial.pdb", model, keep=~gone)
    write_model_map(tmp_path / "map.mrc", model)  # map of the full model
    atoms = read_model(tmp_path / "partial.pdb", selection="ca")
    gmm = build_combined(atoms, read_map(tmp_path / "map.mrc"), 6.0, seed=0)
    origin = gmm.extras["origin"]
    n_model = len(atoms)
    assert np.all(origin[:n_model] == 0) and (origin == 1).sum() >= 2
    pseudo = gmm.params[origin == 1, :3].numpy()
    deleted_ca = model.xyz[gone & model.ca_mask]
    kept = model.xyz[~gone]
    # every deleted Cα has a pseudoatom near it ...
    assert np.linalg.norm(deleted_ca[:, None] - pseudo[None], axis=-1).min(1).max() < 5.0
    # ... and pseudoatoms sit on the deleted helix, not on the modelled atoms
    d_deleted = np.linalg.norm(pseudo[:, None] - model.xyz[gone][None], axis=-1).min(1)
    d_kept = np.linalg.norm(pseudo[:, None] - kept[None], axis=-1).min(1)
    assert np.all(d_deleted < d_kept + 1.0) and np.mean(d_deleted < 3.0) >= 0.8
    # model Gaussians keep their order, positions and Cα graph
    np.testing.assert_allclose(gmm.world_xyz_angstrom()[:n_model], atoms.xyz_angstrom, atol=2e-3)
    assert gmm.extras["bonds"].max() < n_model


def test_model_mask_radius(bundle_files):
    model, pdb, mrc = bundle_files
    mp = read_map(mrc)
    atom = model.xyz[:1] + CENTRE_WORLD
    m = model_mask(mp, atom, 3.0)
    zyx = np.argwhere(m)
    world = ORIGIN + zyx[:, ::-1] * APIX
    assert np.all(np.linalg.norm(world - atom, axis=1) <= 3.0)
    assert len(zyx) == pytest.approx(4 / 3 * math.pi * 27 / APIX**3, rel=0.25)


def test_merge_pads_masks_and_sets_origin():
    a = GMM.from_arrays(np.zeros((3, 3)), 1.0, 2.0, BOX, APIX, extras={"mask__d": np.array([1, 0, 1], bool),
                                                                         "origin": np.zeros(3, np.int8)})
    b = GMM.from_arrays(np.ones((2, 3)), 1.0, 2.0, BOX, APIX, extras={"origin": np.ones(2, np.int8)})
    m = merge(a, b)
    assert m.n == 5 and list(m.extras["origin"]) == [0, 0, 0, 1, 1]
    assert list(m.extras["mask__d"]) == [True, False, True, False, False]
