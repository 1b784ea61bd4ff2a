"""Atomic models: reading, selections, multi-model writing, bad input."""
from __future__ import annotations

import os

import gemmi
import numpy as np
import pytest

from gmmplat.errors import InputError
from gmmplat.io import read_model, select_atoms, write_models
from factories import assert_one_line_error

# Two models; chain A residues 10-11 (with H and an alternate location), chain B residue 1 and a water.
PDB = """\
MODEL        1
ATOM      1  N   ALA A  10      11.104   6.134  -6.504  1.00 20.00           N
ATOM      2  CA AALA A  10      11.639   6.071  -5.147  0.60 21.00           C
ATOM      3  CA BALA A  10      11.739   6.171  -5.247  0.40 21.00           C
ATOM      4  C   ALA A  10      13.149   5.906  -5.160  1.00 22.00           C
ATOM      5  O   ALA A  10      13.780   6.311  -6.137  1.00 23.00           O
ATOM      6  CB  ALA A  10      11.250   7.335  -4.372  1.00 24.00           C
ATOM      7  H   ALA A  10      10.500   6.000  -6.800  1.00 20.00           H
ATOM      8  N   GLY A  11      13.716   5.328  -4.104  1.00 25.00           N
ATOM      9  CA  GLY A  11      15.154   5.110  -4.018  1.00 26.00           C
ATOM     10  C   GLY A  11      15.592   3.839  -4.733  1.00 27.00           C
ATOM     11  O   GLY A  11      14.857   3.279  -5.545  1.00 28.00           O
TER
ATOM     12  N   SER B   1      -1.000   0.000   0.000  1.00 30.00           N
ATOM     13  CA  SER B   1       0.000   1.000   0.000  1.00 30.00           C
ATOM     14  OG  SER B   1       0.000   0.000   1.000  1.00 30.00           O
HETATM   15 CA    CA B 201       5.000   5.000   5.000  1.00 40.00          CA
HETATM   16  O   HOH B 301       1.000   2.000   3.000  1.00 50.00           O
ENDMDL
MODEL        2
ATOM      1  N   ALA A  10       0.000   0.000   0.000  1.00 20.00           N
ENDMDL
END
"""
N_ALL = 16


@pytest.fixture
def pdb(tmp_path):
    path = tmp_path / "model.pdb"
    path.write_text(PDB)
    return path


def test_read_all_first_model_only(pdb):
    m = read_model(pdb)
    assert m.n_atoms_total == N_ALL
    assert len(m) == N_ALL - 1  # alternate location B dropped
    assert 2 not in m.atom_index
    np.testing.assert_allclose(m.xyz_angstrom[0], [11.104, 6.134, -6.504])
    assert m.xyz_angstrom.dtype == np.float64 and m.xyz_angstrom.shape == (N_ALL - 1, 3)
    assert m.element[:3].tolist() == ["N", "C", "C"]
    assert m.atom_name[1] == "CA" and m.residue_name[7] == "GLY" and m.residue_number[7] == 11
    assert m.chain_id[-1] == "B" and m.b_factor[-1] == 50.0
    assert len(m.structure) == 1


def test_selection_kinds(pdb):
    heavy = read_model(pdb, "heavy")
    assert "H" not in heavy.element.tolist() and len(heavy) == N_ALL - 2
    ca = read_model(pdb, "ca")
    assert ca.atom_index.tolist() == [1, 8, 12]  # calcium ion (element Ca) is not a CA
    bb = read_model(pdb, "backbone")
    assert sorted(set(bb.atom_name.tolist())) == ["C", "CA", "N", "O"]
    assert bb.atom_index.tolist() == [0, 1, 3, 4, 7, 8, 9, 10, 11, 12]  # no Ca ion, no water O


def test_chain_and_residue_filters(pdb):
    m = read_model(pdb)
    assert set(select_atoms(m, chains=["B"]).chain_id) == {"B"}
    assert select_atoms(m, chains="A,B").atom_index.tolist() == m.atom_index.tolist()
    assert select_atoms(m, "ca", residues="A:11").atom_index.tolist() == [8]
    assert select_atoms(m, "ca", residues="A:10-11,B:1").atom_index.tolist() == [1, 8, 12]
    assert select_atoms(m, "ca", residues="B").atom_index.tolist() == [12]
    assert select_atoms(m, residues="1-10").residue_number.tolist() == [10] * 6 + [1] * 3
    assert select_atoms(m, residues="A:-5-10", kind="heavy").atom_index.tolist() == [0, 1, 3, 4, 5]
    nested = select_atoms(select_atoms(m, "heavy"), "ca", chains=["A"])
    assert nested.atom_index.tolist() == [1, 8] and "heavy" in nested.selection
    assert read_model(pdb, "ca", chains=["A"], residues="A:10").atom_index.tolist() == [1]


def test_write_multimodel_pdb_and_cif(tmp_path, pdb):
    m = read_model(pdb, "heavy")
    frames = np.stack([m.structure[0].count_atom_sites() * [[f, 2.0 * f, -f]] for f in range(3)]).astype(float)
    frames[:, 0] += [[1.5, 2.5, 3.5]]
    for name in ("traj.pdb", "traj.cif", "traj.mmcif"):
        out = tmp_path / name
        write_models(out, m, frames)
        st = gemmi.read_structure(str(out))
        assert len(st) == 3
        for f in range(3):
            xyz = np.array([a.pos.tolist() for ch in st[f] for r in ch for a in r])
            np.testing.assert_allclose(xyz, frames[f], atol=1e-3)
        back = read_model(out)  # reads the first frame only
        np.testing.assert_allclose(back.xyz_angstrom[0], frames[0, 0], atol=1e-3)
    assert sorted(os.listdir(tmp_path)) == ["model.pdb", "traj.cif", "traj.mmcif", "traj.pdb"]


def test_write_selected_atoms_only(tmp_path, pdb):
    ca = read_model(pdb, "ca")
    frames = np.arange(2 * 3 * 3, dtype=float).reshape(2, 3, 3)
    write_models(tmp_path / "ca.pdb", ca, frames)
    st = gemmi.read_structure(str(tmp_path / "ca.pdb"))
    assert len(st) == 2 and st[0].count_atom_sites() == 3
    assert [a.name for ch in st[1] for r in ch for a in r] == ["CA"] * 3
    np.testing.assert_allclose([a.pos.tolist() for ch in st[1] for r in ch for a in r], frames[1], atol=1e-3)
    with pytest.raises(ValueError):
        write_models(tmp_path / "x.pdb", ca, np.zeros((1, 5, 3)))
    with pytest.raises(ValueError):
        write_models(tmp_path / "x.xyz", ca, frames)


# ------------------------------------------------------------------ bad input

def test_missing_file(tmp_path):
    path = tmp_path / "nope.pdb"
    with pytest.raises(InputError) as e:
        read_model(path)
    assert_one_line_error(e, path, "not found")


def test_unreadable_file(tmp_path):
    path = tmp_path / "bad.cif"
    path.write_text('data_x\nloop_\n_atom_site.id\n"unterminated\n')
    with pytest.raises(InputError) as e:
        read_model(path)
    assert_one_line_error(e, path, "cannot read atomic model")


@pytest.mark.parametrize("text", ["HEADER    NOTHING HERE\nEND\n", "hello\nworld\n"])
def test_empty_structure(tmp_path, text):
    path = tmp_path / "empty.pdb"
    path.write_text(text)
    with pytest.raises(InputError) as e:
        read_model(path)
    assert_one_line_error(e, path, "empty structure")


def test_selection_matching_nothing_is_named(pdb):
    with pytest.raises(InputError) as e:
        read_model(pdb, "ca", chains=["Z"])
    assert_one_line_error(e, pdb, "matches no atoms", "'ca'", "Z")
    with pytest.raises(InputError) as e:
        select_atoms(read_model(pdb), residues="A:500-600")
    assert_one_line_error(e, pdb, "A:500-600")


def test_bad_selection_syntax(pdb):
    with pytest.raises(InputError) as e:
        read_model(pdb, "sidechains")
    assert_one_line_error(e, pdb, "unknown atom selection", "sidechains")
    with pytest.raises(InputError) as e:
        read_model(pdb, residues="A:x-y")
    assert_one_line_error(e, pdb, "bad residue range", "A:x-y")
