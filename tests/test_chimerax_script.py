"""``chimerax.cxc`` written by ``gmmplat analyze``: known commands, files that exist, paths relative to it."""
from __future__ import annotations

import argparse
import shlex
import shutil
import xml.etree.ElementTree as ET

import numpy as np
from test_analysis_cli import run_dir  # noqa: F401  (module fixture)

from gmmplat.analysis.chimerax import enclosing_level
from gmmplat.model.gmm import GMM

KNOWN = {"close", "set", "lighting", "graphics", "open", "volume", "hide", "cartoon", "color", "vseries",
         "coordset", "view"}


def parse_cxc(path):
    cmds = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            cmds.append(shlex.split(line))
    return cmds


def test_analyze_writes_a_chimerax_script(run_dir, tmp_path):  # noqa: F811
    from gmmplat.commands import analyze

    p = argparse.ArgumentParser()
    analyze.add_arguments(p)
    out = tmp_path / "project" / "analysis"
    shutil.copy(run_dir / "consensus_map.mrc", tmp_path / "project.mrc")
    args = p.parse_args(["--run", str(run_dir / "run"), "--pcs", "2", "--frames", "3", "--out", str(out),
                         "--model", str(run_dir / "neutral_model.pdb"), "--map", str(tmp_path / "project.mrc")])
    assert analyze.run(args) == 0
    cxc = out / "chimerax.cxc"
    cmds = parse_cxc(cxc)
    assert {c[0] for c in cmds} <= KNOWN, {c[0] for c in cmds} - KNOWN
    opens = [c for c in cmds if c[0] == "open"]
    for c in opens:
        files = [a for a in c[1:] if a not in ("vseries", "coordsets", "true")]
        for f in files:
            assert not f.startswith("/"), f  # relative to the script
            assert (cxc.parent / f).is_file(), f
    # model numbers follow the open order: consensus, PC1 and PC2 series, PC1 and PC2 models, markers
    assert opens[0][1] == "../../project.mrc"
    assert opens[1][-2:] == ["vseries", "true"] and len(opens[1]) - 3 == 3
    assert opens[1][1:4] == ["maps/pc1_frame00.mrc", "maps/pc1_frame01.mrc", "maps/pc1_frame02.mrc"]
    assert opens[3][1:] == ["models/pc1.pdb", "coordsets", "true"]
    assert opens[5][1] == "domains.cmm"
    assert ["vseries", "play", "#2", "loop", "true", "direction", "oscillate"] in cmds
    assert ["coordset", "#4", "1,3", "loop", "1000", "bounce", "true"] in cmds
    assert ["color", "zone", "#2", "near", "#6"] == [c for c in cmds if c[:2] == ["color", "zone"]][0][:5]
    # the moving domain is coloured on the model, and the markers carry the mask colours
    colours = [c for c in cmds if c[0] == "color" and c[1].startswith("#4/")]
    assert len({c[2] for c in colours}) == 2, colours
    markers = ET.parse(out / "domains.cmm").getroot()
    neutral = GMM.load(run_dir / "gmm.npz")
    assert len(markers) == neutral.n
    moving = neutral.masks()["moving_domain"]
    reds = np.array([float(m.get("r")) > 0.8 and float(m.get("g")) < 0.2 for m in markers])
    np.testing.assert_array_equal(reds, moving)  # first mask: the palette's red
    levels = [float(c[3]) for c in cmds if c[0] == "volume" and c[2] == "level"]
    assert all(lv > 0 for lv in levels[1:])  # decoded maps: positive thresholds (consensus here is zeros)
    # moving the whole project keeps every path valid
    shutil.move(str(tmp_path / "project"), str(tmp_path / "moved"))
    shutil.move(str(tmp_path / "project.mrc"), str(tmp_path / "moved.mrc"))
    moved = tmp_path / "moved" / "analysis" / "chimerax.cxc"
    for c in parse_cxc(moved):
        if c[0] == "open" and c[1] != "../../project.mrc":
            assert (moved.parent / c[1]).is_file()


def test_enclosing_level():
    v = np.zeros((10, 10, 10))
    v[:2] = 1.0
    v[2:4] = 0.01
    assert enclosing_level(v, 0.9) == 1.0
    assert enclosing_level(v, 0.999) == 0.01
    assert enclosing_level(np.zeros((3, 3, 3))) == 0.0
