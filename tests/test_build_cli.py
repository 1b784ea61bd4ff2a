"""``gmmplat build``: output files, report, and one-line errors for bad input."""
from __future__ import annotations

import argparse
import json
import re

import gemmi
import numpy as np
import pandas as pd
import pytest

from gmmplat.commands import build as build_cmd
from gmmplat.errors import InputError
from gmmplat.io import read_map, write_map
from gmmplat.model.gmm import GMM
from test_build_helpers import (APIX, BOX, HELIX_RESIDUES, ORIGIN, bundle, third_helix_residues, write_model,
                                write_model_map)


def run_build(*argv) -> int:
    parser = argparse.ArgumentParser()
    build_cmd.add_arguments(parser)
    return build_cmd.run(parser.parse_args([str(a) for a in argv]))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    model = bundle()
    gone = np.isin(model.res_seq, third_helix_residues(model))
    write_model(d / "partial.pdb", model, keep=~gone)
    write_model(d / "far.pdb", model, shift=(60.0, 0.0, 0.0))
    write_model_map(d / "map.mrc", model, noise=0.01)
    return d


def test_combined_build_writes_everything(files, tmp_path):
    out = tmp_path / "out"
    assert run_build("--map", files / "map.mrc", "--model", files / "partial.pdb", "--combine", "--refine-steps", 15,
                     "--small-gmm", 6, "--mask", "first=chain:A:1-10", "--mask", "few=index:0-2", "--out", out) == 0
    for name in ("gmm.npz", "gmm_centres.pdb", "gmm_map.mrc", "fsc.csv", "fsc.png", "build.json"):
        assert (out / name).stat().st_size > 0, name
    gmm = GMM.load(out / "gmm.npz")
    report = json.loads((out / "build.json").read_text())
    n0, n1 = report["n_per_origin"]["model"], report["n_per_origin"]["pseudoatom"]
    assert n0 == bundle().n_residues - HELIX_RESIDUES and n1 > 0 and n0 + n1 == gmm.n  # one Gaussian per Cα left
    assert report["fsc05_resolution_angstrom"] > 0 and report["seconds_total"] > 0
    assert report["ca_bonds"] > 0 and report["masks"] == {"first": 10, "few": 3}
    assert gmm.extras["small_params"].shape == (6, 5) and gmm.extras["transition"].shape == (6, gmm.n)
    assert set(gmm.masks()) == {"first", "few"}
    # the GMM names the model it was built from (checked when a model is morphed by it)
    partial = gemmi.read_structure(str(files / "partial.pdb"))
    numbers = [r.seqid.num for ch in partial[0] for r in ch for _ in r]
    assert str(gmm.extras["model_selection"]) == "ca"
    assert gmm.extras["model_residue_number"].tolist() == numbers
    # the rendered map lies on the consensus map's grid
    rendered, consensus = read_map(out / "gmm_map.mrc"), read_map(files / "map.mrc")
    np.testing.assert_allclose(rendered.origin_angstrom, consensus.origin_angstrom)
    assert rendered.voxel_size_angstrom == pytest.approx(APIX) and rendered.data.shape == (BOX,) * 3
    assert np.corrcoef(rendered.data.ravel(), consensus.data.ravel())[0, 1] > 0.8
    # the centres file holds world coordinates
    st = gemmi.read_structure(str(out / "gmm_centres.pdb"))
    xyz = np.array([a.pos.tolist() for ch in st[0] for r in ch for a in r])
    np.testing.assert_allclose(np.sort(xyz, axis=0), np.sort(gmm.world_xyz_angstrom(), axis=0), atol=2e-3)
    fsc = pd.read_csv(out / "fsc.csv")
    assert list(fsc.columns) == ["shell", "frequency_per_angstrom", "resolution_angstrom", "fsc"]
    assert len(fsc) == BOX // 2 + 1


def test_map_only_build(files, tmp_path):
    assert run_build("--map", files / "map.mrc", "--n-gaussians", 40, "--refine-steps", 5, "--out", tmp_path) == 0
    report = json.loads((tmp_path / "build.json").read_text())
    assert report["n_per_origin"] == {"model": 0, "pseudoatom": 40}


def _one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_model_outside_the_map_reports_the_offset(files, tmp_path):
    with pytest.raises(InputError) as e:
        run_build("--map", files / "map.mrc", "--model", files / "far.pdb", "--out", tmp_path)
    msg = _one_line(e, "does not overlap", str(files / "far.pdb"))
    offset = float(re.search(r"centroid is ([0-9.]+) Å", msg).group(1))
    assert offset == pytest.approx(60.0, abs=3.0)


def test_map_without_density_above_threshold(files, tmp_path):
    with pytest.raises(InputError) as e:
        run_build("--map", files / "map.mrc", "--threshold", 1e6, "--out", tmp_path)
    _one_line(e, "no voxels above threshold", str(files / "map.mrc"))
    write_map(tmp_path / "flat.mrc", np.zeros((BOX,) * 3, np.float32), APIX, ORIGIN)
    with pytest.raises(InputError) as e:
        run_build("--map", tmp_path / "flat.mrc", "--out", tmp_path / "o")
    _one_line(e, "no voxels above threshold")


