"""Ideal structures and the three datasets' motions (gmmplat.synthetic)."""
import numpy as np
import pytest
from scipy.spatial.distance import pdist

from gmmplat.errors import ConfigError
from gmmplat.io.models import read_model
from gmmplat.synthetic.motions import DATASETS, get_motion, restore_bonds, summarize
from gmmplat.synthetic.structures import AtomicModel, Helix, backbone_from_ca, build_chain, loop_ca

T_GRID = np.linspace(-1.0, 1.0, 9)


def _ca_bonds(model, xyz):
    """Bonded Cα–Cα distances of every chain, concatenated."""
    out = []
    for c in model.chains:
        ca = xyz[..., model.ca_mask & (model.chain_id == c), :]
        out.append(np.linalg.norm(np.diff(ca, axis=-2), axis=-1).reshape(-1))
    return np.concatenate(out)


def test_ideal_helix_geometry():
    axis = np.array([1.0, 2.0, 2.0]) / 3.0
    ca = Helix((5.0, -3.0, 2.0), axis, 24, phase_deg=30.0).ca()
    assert np.allclose(np.linalg.norm(np.diff(ca, axis=0), axis=1), 3.8, atol=0.05)
    rel = ca - np.array([5.0, -3.0, 2.0])
    height = rel @ axis
    assert np.allclose(np.diff(height), 1.5)  # rise per residue
    radial = rel - height[:, None] * axis
    assert np.allclose(np.linalg.norm(radial, axis=1), 2.3, atol=0.05)
    norm = np.linalg.norm(radial, axis=1)
    cosang = np.sum(radial[:-1] * radial[1:], 1) / norm[:-1] / norm[1:]
    assert np.allclose(np.degrees(np.arccos(cosang)), 100.0)
    sense = np.cross(radial[:-1], radial[1:]) @ axis  # right-handed: turns counter-clockwise about the axis
    assert np.all(sense > 0)


def test_loop_spacing_and_limits():
    start, end = np.zeros(3), np.array([10.0, 0.0, 0.0])
    loop = loop_ca(start, end, bulge=np.array([0.0, 0.0, 1.0]), n_residues=3)
    path = np.concatenate([start[None], loop, end[None]])
    assert np.allclose(np.linalg.norm(np.diff(path, axis=0), axis=1), 3.8)
    assert np.all(loop[:, 2] > 0)  # bulges the requested way
    with pytest.raises(ValueError):
        loop_ca(start, np.array([20.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]), n_residues=3)


def test_backbone_geometry_and_structure():
    trace = build_chain([Helix((0, 0, 0), (0, 0, 1), 18), Helix((10, 0, 0), (0, 0, -1), 18, 60.0)])
    assert np.allclose(np.linalg.norm(np.diff(trace.ca, axis=0), axis=1), 3.8)
    model = AtomicModel.from_traces({"A": trace})
    bb = backbone_from_ca(trace.ca, model.turns["A"])
    assert np.allclose(np.linalg.norm(bb["N"] - bb["CA"], axis=1), 1.458, atol=0.02)
    assert np.allclose(np.linalg.norm(bb["C"] - bb["CA"], axis=1), 1.525, atol=1e-6)
    assert np.allclose(np.linalg.norm(bb["O"] - bb["C"], axis=1), 1.231, atol=1e-6)
    assert np.allclose(np.linalg.norm(bb["N"][1:] - bb["C"][:-1], axis=1), 1.329, atol=0.02)
    assert np.allclose(np.linalg.norm(bb["CB"] - bb["CA"], axis=1), 1.53)
    helix = trace.ss == "H"
    hb = np.linalg.norm(bb["O"][2:10] - bb["N"][6:14], axis=1)  # i -> i+4 hydrogen bonds inside helix 1
    assert helix[:14].all() and np.all((hb > 2.6) & (hb < 3.2))
    assert set(model.element) == {"C", "N", "O"}
    assert model.electrons.sum() == sum({"C": 6, "N": 7, "O": 8}[e] for e in model.element)
    st = model.to_structure()
    assert st[0].count_atom_sites() == model.n_atoms and len(st[0]["A"]) == len(trace.ca)


@pytest.mark.parametrize("name", DATASETS)
def test_motion_basics(name):
    motion = get_motion(name)
    model = motion.model
    assert 150 <= model.n_residues <= 350
    xyz = motion.coordinates_batch(T_GRID)
    assert xyz.shape == (len(T_GRID), model.n_atoms, 3)
    assert np.allclose(motion.coordinates(0.0), model.xyz, atol=1e-9)  # t = 0 is the neutral model
    assert np.allclose(xyz[len(T_GRID) // 2], model.xyz, atol=1e-9)
    assert np.allclose(_ca_bonds(model, xyz), 3.8, atol=1e-6)  # under every motion
    assert max(pdist(x).max() for x in xyz) <= 80.0  # fits a 64 px box at 2 Å/px
    assert np.linalg.norm(xyz, axis=-1).max() + 4.0 + 6.0 <= 64.0
    centroid = (model.electrons[:, None] * model.xyz).sum(0) / model.electrons.sum()
    assert np.allclose(centroid, 0.0, atol=1e-9)
    small = np.linalg.norm(motion.coordinates(0.01) - model.xyz, axis=1).max()
    assert 0 < small < 0.2  # continuous in t


@pytest.mark.parametrize("name", ["hinge", "coupled"])
def test_domain_moves_rigidly_about_the_hinge(name):
    motion = get_motion(name)
    model, dom = motion.model, motion.domain_mask
    core = ~dom & ~motion.masks.get("shifting_helices", np.zeros_like(dom))
    for t in (-1.0, 0.4, 1.0):
        xyz = motion.coordinates(t)
        assert np.allclose(pdist(xyz[dom]), pdist(model.xyz[dom]), atol=1e-9)  # rigid
        assert np.array_equal(xyz[core], model.xyz[core])  # the core stays put
        pivot = (model.chain_id == "A") & (model.res_seq == motion.pivot_residue) & model.ca_mask
        assert np.allclose(xyz[pivot], motion.hinge_point_angstrom)  # the axis passes through the pivot Cα
        # rotation angle about the hinge axis = 15° · t
        a, b = model.xyz[dom] - motion.hinge_point_angstrom, xyz[dom] - motion.hinge_point_angstrom
        ax = motion.hinge_axis
        a, b = a - np.outer(a @ ax, ax), b - np.outer(b @ ax, ax)
        k = np.argmax(np.linalg.norm(a, axis=1))
        angle = np.degrees(np.arctan2(np.cross(a[k], b[k]) @ ax, a[k] @ b[k]))
        assert angle == pytest.approx(15.0 * t, abs=1e-6)
    disp = np.linalg.norm(motion.coordinates(1.0)[dom] - model.xyz[dom], axis=1)
    assert disp.max() >= 10.0


def test_coupled_shift():
    motion = get_motion("coupled")
    shift = motion.masks["shifting_helices"]
    assert set(motion.model.chain_id[shift]) == {"B"}
    for t in (-1.0, 0.5, 1.0):
        d = motion.coordinates(t)[shift] - motion.model.xyz[shift]
        assert np.allclose(d, [0.0, 0.0, 2.5 * t])


def test_bend_is_smooth_and_large_enough():
    motion = get_motion("bend")
    model = motion.model
    z = model.xyz[:, 2]
    for t in (-1.0, 1.0):
        disp = np.linalg.norm(motion.coordinates(t) - model.xyz, axis=1)
        middle = np.abs(z) < 3.0
        for end in (z > 0.8 * z.max(), z < 0.8 * z.min()):  # each end moves ≥ ~8 Å
            assert np.linalg.norm((motion.coordinates(t)[end] - model.xyz[end]).mean(0)) >= 7.5
            assert disp[end].mean() >= 8.0
        assert disp[middle].max() < 2.5
    # no rigid parts: distances between atoms of one helix change along the helix
    h0 = (model.chains["A"].helix_index == 0)
    ca = model.xyz[model.ca_mask][h0]
    bent = motion.coordinates(1.0)[model.ca_mask][h0]
    assert np.abs(pdist(bent) - pdist(ca)).max() > 1.0


def test_restore_bonds_identity_and_exactness():
    ca = Helix((0, 0, 0), (0, 0, 1), 20).ca()
    assert np.allclose(restore_bonds(ca), ca, atol=1e-12)
    stretched = ca * np.array([1.0, 1.0, 1.1])
    fixed = restore_bonds(stretched)
    assert np.allclose(np.linalg.norm(np.diff(fixed, axis=0), axis=1), 3.8)
    assert np.abs(fixed - stretched).max() < 0.5


def test_model_round_trip_through_pdb(tmp_path):
    motion = get_motion("coupled")
    path = tmp_path / "m.pdb"
    motion.model.to_structure(motion.model.xyz).write_pdb(str(path))
    back = read_model(path)
    assert len(back) == motion.model.n_atoms
    assert np.allclose(back.xyz_angstrom, motion.model.xyz, atol=1e-3)
    assert list(back.atom_name[:5]) == ["N", "CA", "C", "O", "CB"] or back.residue_name[0] == "GLY"
    sel = read_model(path, residues="B:1-500")
    assert len(sel) == int(motion.masks["shifting_helices"].sum())


def test_summary_and_unknown_dataset():
    s = summarize(get_motion("hinge"))
    assert s["moving_domain_max_displacement_at_t1_angstrom"] >= 10.0 and s["max_extent_angstrom"] <= 80.0
    with pytest.raises(ConfigError, match="unknown dataset"):
        get_motion("wiggle")
