"""gmmplat.viewers without a browser: what each figure holds, in-place updates, model frames,
and the notebook runner / demo driver (tiny notebooks, no sample data)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("plotly")
pytest.importorskip("anywidget")
pytest.importorskip("nglview")

import gemmi  # noqa: E402
import nbformat  # noqa: E402

from gmmplat import viewers  # noqa: E402
from gmmplat.errors import ConfigError, InputError  # noqa: E402
from gmmplat.model.gmm import GMM  # noqa: E402
from gmmplat.viewers.gmm3d import REST_COLOUR, SIZE_PX_PER_SIGMA_ANGSTROM, SIZE_PX_RANGE, marker_sizes  # noqa: E402


def make_gmm(n=12, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n, 3)) * 8
    i = np.arange(n)
    extras = {"bonds": np.stack([i[:-1], i[1:]], axis=1), "mask__arm": i >= n // 2,
              "origin": (i % 3 == 0).astype(np.int8)}
    gmm = GMM.from_arrays(xyz, 1.0, 2.0, 32, 2.0, extras=extras)
    gmm.params[:, 3] = torch.linspace(0.5, 1.5, n)
    gmm.params[:, 4] = torch.linspace(1.0, 3.0, n)
    return gmm


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


# ----------------------------------------------------------------------------- GMM figures
def test_gmm_figure_markers_bonds_and_overlay():
    gmm = make_gmm()
    p = gmm.params.numpy()
    fig = viewers.gmm_figure(gmm, overlay_params=p[:3])
    assert [t.name for t in fig.data] == ["gaussians", "bonds", "overlay"]
    g = trace(fig, "gaussians")
    np.testing.assert_allclose(np.c_[g.x, g.y, g.z], p[:, :3], rtol=1e-6)
    np.testing.assert_allclose(g.marker.color, p[:, 3], rtol=1e-6)  # amplitude colouring
    expected = np.clip(SIZE_PX_PER_SIGMA_ANGSTROM * p[:, 4], *SIZE_PX_RANGE)
    np.testing.assert_allclose(g.marker.size, expected, rtol=1e-6)
    b = trace(fig, "bonds")
    assert len(b.x) == 3 * (gmm.n - 1) and b.x[2] is None  # one segment + gap per bond
    assert b.x[3] == pytest.approx(p[1, 0]) and b.x[4] == pytest.approx(p[2, 0])  # bond 1-2
    assert len(trace(fig, "overlay").x) == 3


def test_marker_sizes_grow_with_sigma_and_are_clipped():
    s = marker_sizes(np.array([0.1, 1.0, 2.0, 100.0]))
    assert s[0] == SIZE_PX_RANGE[0] and s[-1] == SIZE_PX_RANGE[1] and s[1] < s[2]


def test_gmm_figure_colour_modes():
    gmm = make_gmm()
    n = gmm.n
    origin = viewers.gmm_figure(gmm, color_by="origin").data[0].marker.color
    assert len(set(origin)) == 2 and origin[0] != origin[1]  # Gaussian 0 is a pseudoatom, 1 is not
    domain = viewers.gmm_figure(gmm, color_by="domain").data[0].marker.color
    assert all(c == REST_COLOUR for c in domain[: n // 2]) and all(c != REST_COLOUR for c in domain[n // 2:])
    moved = gmm.params.clone()
    moved[:, 0] += torch.arange(n, dtype=torch.float32)
    disp = viewers.gmm_figure(moved, color_by="displacement", gmm=gmm).data[0].marker.color
    np.testing.assert_allclose(disp, np.arange(n), atol=1e-5)
    values = viewers.gmm_figure(gmm, color_by=np.arange(n) * 2.0).data[0].marker.color
    np.testing.assert_allclose(values, np.arange(n) * 2.0)
    with pytest.raises(ConfigError):
        viewers.gmm_figure(gmm, color_by="nonsense")
    with pytest.raises(ConfigError):
        viewers.gmm_figure(gmm.params, color_by="displacement")  # no reference GMM
    with pytest.raises(ConfigError):
        viewers.gmm_figure(gmm, color_by=np.arange(n + 1))
    with pytest.raises(ConfigError):
        viewers.gmm_figure(np.zeros((4, 4)))


def test_mask_figure_one_trace_per_mask_and_rest():
    gmm = make_gmm()
    fig = viewers.mask_figure(gmm, show_bonds=True)
    names = [t.name for t in fig.data]
    assert names == [f"arm ({gmm.n - gmm.n // 2})", f"rest ({gmm.n // 2})", "bonds"]
    arm = fig.data[0]
    np.testing.assert_allclose(arm.x, gmm.params[gmm.n // 2:, 0].numpy(), rtol=1e-6)
    assert fig.data[1].marker.color == REST_COLOUR
    two = viewers.mask_figure(gmm, masks={"a": np.arange(gmm.n) < 3, "b": np.arange(gmm.n) < 5})
    assert [t.name for t in two.data] == ["a (3)", "b (5)", f"rest ({gmm.n - 5})"]
    with pytest.raises(ConfigError):
        viewers.mask_figure(GMM.from_arrays(np.zeros((3, 3)), 1.0, 1.0, 16, 1.0))
    with pytest.raises(ConfigError):
        viewers.mask_figure(gmm, masks={"bad": np.ones(gmm.n + 1, bool)})


def test_update_gmm_figure_static_and_live():
    gmm = make_gmm()
    new = gmm.params.clone()
    new[:, :3] += 5.0
    static = viewers.gmm_figure(gmm)
    viewers.update_gmm_figure(static, new, gmm=gmm)
    np.testing.assert_allclose(static.data[0].x, new[:, 0].numpy(), rtol=1e-6)
    assert trace(static, "bonds").x[0] == pytest.approx(float(new[0, 0]))
    live = viewers.gmm_figure(gmm, live=True)
    assert isinstance(live, viewers.LiveFigure) and "gmmplat-gmm" in live._dom_classes
    seq = live.update.get("seq", 0)
    viewers.update_gmm_figure(live, new, gmm=gmm, color_by="displacement")
    msg = live.update
    assert msg["seq"] == seq + 1  # one message for Gaussians and bonds
    by_trace = {r["trace"]: r["data"] for r in msg["restyle"]}
    np.testing.assert_allclose(by_trace[0]["x"][0], new[:, 0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(by_trace[0]["marker.color"][0], np.full(gmm.n, math.sqrt(75)), rtol=1e-5)
    assert by_trace[1]["x"][0][0] == pytest.approx(float(new[0, 0]))
    np.testing.assert_allclose(live.data[0].x, new[:, 0].numpy(), rtol=1e-6)  # Python mirror follows
    json.dumps(msg)  # plain JSON for the front end


def test_live_figure_batches_and_mirrors_layout():
    import plotly.graph_objects as go

    fig = viewers.LiveFigure(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))
    assert fig.figure["data"][0]["type"] == "scatter"
    with fig.batch_update():
        fig.restyle(0, {"x": np.array([5.0, 6.0])})
        fig.relayout({"title.text": "moved"})
        assert fig.update == {}  # nothing sent inside the batch
    assert fig.update["restyle"] == [{"trace": 0, "data": {"x": [[5.0, 6.0]]}}]
    assert fig.update["layout"] == {"title.text": "moved"} and fig.layout.title.text == "moved"
    assert fig.to_figure().data[0].x == (5.0, 6.0)


# ----------------------------------------------------------------------------- latent space
def latent_along(direction, n=400, seed=1):
    rng = np.random.default_rng(seed)
    t = rng.uniform(-1, 1, n)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    noise = rng.normal(size=(n, len(d))) * 0.05
    return t, t[:, None] * d[None] * 3 + noise


def test_latent_figure_pca_axes_follow_the_main_direction():
    t, z = latent_along([1.0, 2.0, -2.0, 0.5])
    fig = viewers.latent_figure(z, color=t)
    x = np.asarray(fig.data[0].x)
    assert abs(np.corrcoef(x, t)[0, 1]) > 0.99
    title = fig.layout.xaxis.title.text  # "PC1 (NN %)": nearly all the variance
    assert title.startswith("PC1 (") and int(title[5:].split()[0]) >= 99, title
    np.testing.assert_allclose(fig.data[0].marker.color, t)
    raw = viewers.latent_figure(z, pca=False)
    np.testing.assert_allclose(raw.data[0].x, z[:, 0])
    strip = viewers.latent_figure(t[:, None])
    np.testing.assert_allclose(strip.data[0].x, t)
    expanded = viewers.latent_figure(np.stack([z, z], axis=1), color=t)  # (P, K, d): colours repeated
    assert len(expanded.data[0].x) == 2 * len(t) and len(expanded.data[0].marker.color) == 2 * len(t)


def test_latent_trajectory_spans_the_first_pc():
    t, z = latent_along([0.0, 1.0, 0.0])
    traj = viewers.latent_trajectory(z, n_frames=5)
    assert traj.shape == (5, 3)
    along = traj[:, 1]
    assert np.all(np.diff(along) > 0) or np.all(np.diff(along) < 0)
    lo, hi = np.percentile(z[:, 1], [1, 99])
    assert min(along) == pytest.approx(lo, abs=0.05) and max(along) == pytest.approx(hi, abs=0.05)
    np.testing.assert_allclose(viewers.latent_trajectory(t[:, None], n_frames=3)[:, 0],
                               np.linspace(*np.percentile(t, [1, 99]), 3))


def test_latent_explorer_moves_the_gmm_and_the_model(tmp_path):
    gmm = make_gmm()
    t, z = latent_along([1.0, 0.5])
    calls = []

    def decode(zt):
        calls.append((type(zt), zt.dtype, tuple(zt.shape)))
        out = gmm.params[None].repeat(len(zt), 1, 1).clone()
        out[:, :, 0] += 10 * zt[:, :1]
        return out

    pdb = write_frames_pdb(tmp_path / "m.pdb", n_frames=7)
    view = viewers.model_view(pdb)
    seen = []
    ex = viewers.latent_explorer(z, decode, gmm, n_frames=7, color=t, model_view=view,
                                 on_frame=lambda k, zk, p: seen.append(k))
    assert calls == [(torch.Tensor, torch.float32, (7, 2))]  # decoded once, all frames
    assert isinstance(ex, viewers.LatentExplorer) and ex.slider.value == 3
    seq = ex.gmm_figure.update.get("seq", 0)
    ex.set_frame(0)
    assert ex.gmm_figure.update["seq"] == seq + 1  # Gaussians, bonds and title in one message
    assert ex.gmm_figure.update["layout"] == {"title.text": "PC1 frame 0"}
    np.testing.assert_allclose(ex.gmm_figure.data[0].x, ex.frames[0][:, 0], rtol=1e-6)
    cur = trace(ex.latent_figure, "current")
    line = trace(ex.latent_figure, "trajectory")
    assert (cur.x[0], cur.y[0]) == pytest.approx((line.x[0], line.y[0]))
    assert view.frame == 0 and seen == [0]
    assert ex.gmm_figure.layout.title.text == "PC1 frame 0"
    with pytest.raises(ConfigError):
        viewers.latent_explorer(z, decode, gmm, n_frames=5, model_view=view)  # 7 model frames
    with pytest.raises(ConfigError):
        viewers.latent_explorer(z, lambda zt: torch.zeros(len(zt), 3), gmm)
    explicit = viewers.latent_explorer(z, decode, gmm, trajectory=np.zeros((4, 2)))
    assert explicit.slider.max == 3 and explicit.z.shape == (4, 2)


# ----------------------------------------------------------------------------- molecules
def write_frames_pdb(path, n_frames=5, n_atoms=6):
    st = gemmi.Structure()
    for f in range(n_frames):
        model, chain = gemmi.Model(str(f + 1)), gemmi.Chain("A")
        for k in range(n_atoms):
            res = gemmi.Residue()
            res.name, res.seqid = "ALA", gemmi.SeqId(k + 1, " ")
            atom = gemmi.Atom()
            atom.name, atom.element = "CA", gemmi.Element("C")
            atom.pos = gemmi.Position(3.8 * k, float(f), 0.0)
            res.add_atom(atom)
            chain.add_residue(res)
        model.add_chain(chain)
        st.add_model(model)
    st.write_pdb(str(path))
    return path


def test_model_view_trajectory_frames(tmp_path):
    pdb = write_frames_pdb(tmp_path / "traj.pdb", n_frames=5)
    view = viewers.model_view(pdb, representation="spacefill", selection="1-3:A")
    assert view.max_frame == 4 and view.frame == 2
    assert "gmmplat-model" in view._dom_classes
    assert all(c.max == 4 for c in view._iplayer.children)  # player spans every frame
    traj = view._trajlist[0]
    np.testing.assert_allclose(traj.get_coordinates(4)[:, 1], 4.0)
    start = gemmi.read_pdb_string(traj.get_structure_string())
    assert start[0]["A"][0]["CA"][0].pos.y == pytest.approx(2.0)  # topology drawn at the first frame shown
    sent = []
    view.send = lambda msg, buffers=None: sent.append((msg, buffers))
    view.frame = 4
    msg, buffers = next((m, b) for m, b in sent if m.get("type") == "binary_single")
    np.testing.assert_allclose(np.frombuffer(buffers[0], np.float32).reshape(-1, 3)[:, 1], 4.0)
    reps = [m["args"][0] for m in view._ngl_msg_archive if m.get("methodName") == "addRepresentation"]
    assert reps == ["cartoon", "spacefill"]


def test_model_view_from_template_and_frames(tmp_path):
    from gmmplat.io.models import read_model

    pdb = write_frames_pdb(tmp_path / "one.pdb", n_frames=1)
    model = read_model(pdb)
    frames = model.xyz_angstrom[None] + np.arange(3)[:, None, None] * np.array([0.0, 0.0, 1.0])
    view = viewers.model_view((model, frames))
    assert view.max_frame == 2
    np.testing.assert_allclose(view._trajlist[0].get_coordinates(2)[:, 2], 2.0, atol=1e-3)
    with pytest.raises(ConfigError):
        viewers.model_view(pdb, frame=5)


def test_frames_trajectory_rejects_bad_files(tmp_path):
    with pytest.raises(InputError):
        viewers.FramesTrajectory.from_file(tmp_path / "missing.pdb")
    good = write_frames_pdb(tmp_path / "a.pdb", n_frames=2, n_atoms=4).read_text().splitlines()
    end = next(i for i, line in enumerate(good) if line.startswith("ENDMDL"))
    bad = good[: end - 1] + good[end:]  # model 1 loses an atom
    (tmp_path / "bad.pdb").write_text("\n".join(bad) + "\n")
    with pytest.raises(InputError, match="atoms"):
        viewers.FramesTrajectory.from_file(tmp_path / "bad.pdb")


def test_ngl_selection_from_mask_ranges():
    assert viewers.ngl_selection({"A": [[120, 186]], "B": [[1, 5], [9, 9]]}) == "(120-186:A) or (1-5:B) or (9-9:B)"
    with pytest.raises(ConfigError):
        viewers.ngl_selection({})


# ----------------------------------------------------------------------------- 2D figures
def test_loss_figure_reads_a_run_losses_csv(tmp_path):
    from gmmplat.train.outputs import write_losses

    rows = [dict(round=r, round_name=f"r{r}", epoch=e, global_epoch=g, train_loss=1.0 / g, train_data_loss=0.9 / g,
                 val_loss=1.1 / g, learning_rate=1e-3, train_images_per_s=100.0, val_images_per_s=200.0, seconds=1.0)
            for g, (r, e) in enumerate([(1, 1), (1, 2), (2, 1), (2, 2)], start=1)]
    write_losses(tmp_path / "losses.csv", rows)
    fig = viewers.loss_figure(tmp_path)  # a run folder works too
    assert [t.name for t in fig.data] == ["train_loss", "train_data_loss", "val_loss"]
    np.testing.assert_allclose(fig.data[2].y, [1.1, 0.55, 1.1 / 3, 0.275], rtol=1e-5)
    assert fig.layout.yaxis.type == "log"
    assert [s.x0 for s in fig.layout.shapes] == [2.5]  # round 2 starts at global epoch 3
    with pytest.raises(InputError):
        viewers.loss_figure(tmp_path / "nothing.csv")


def test_fsc_figure_reports_the_resolution_at_threshold(tmp_path):
    from gmmplat.physics.fsc import resolution_at_threshold, write_fsc_csv

    f = np.linspace(0, 0.25, 33)
    c = 1 / (1 + np.exp((f - 0.1) * 60))
    write_fsc_csv(tmp_path / "fsc.csv", f, c)
    fig = viewers.fsc_figure(tmp_path / "fsc.csv")
    res = resolution_at_threshold(f, c, 0.5)
    assert f"{res:.1f} Å at 0.5" in fig.data[0].name and res == pytest.approx(10.0, rel=0.02)
    np.testing.assert_allclose(fig.data[0].customdata[1:], 1 / f[1:], rtol=1e-5)
    two = viewers.fsc_figure({"a": (f, c), "b": tmp_path / "fsc.csv"})
    assert len(two.data) == 2 and [round(s.y0, 3) for s in two.layout.shapes] == [0.5, 0.143]
    with pytest.raises(ConfigError):
        viewers.fsc_figure((f, c[:-1]))


def test_histogram_figure_bins_and_overlays():
    fig = viewers.histogram_figure(np.arange(100.0), bins=10, xlabel="t")
    assert fig.data[0].xbins.size == pytest.approx(9.9) and not fig.layout.showlegend
    two = viewers.histogram_figure({"a": [0, 1, 2], "b": [2, 3]})
    assert [t.name for t in two.data] == ["a", "b"] and two.layout.barmode == "overlay"
    with pytest.raises(ConfigError):
        viewers.histogram_figure([np.nan, np.inf])


def test_image_grid_and_map_slices_show_the_right_pixels():
    vol = np.zeros((8, 8, 8))
    vol[4, 1, 6] = 10.0  # z=4, y=1, x=6
    fig = viewers.map_slices_figure(vol)
    assert [a.text for a in fig.layout.annotations] == ["xy (z = 4)", "xz (y = 4)", "yz (x = 4)", "sum along z"]
    xy = np.asarray(fig.data[0].z)[..., 0]
    assert xy.shape == (8, 8)
    assert np.argwhere(xy == xy.max()).tolist() == [[8 - 1 - 1, 6]]  # row y=1 drawn with y up
    grid = viewers.image_grid_figure(torch.randn(5, 16, 16), titles=list("abcde"), ncols=2)
    assert len(grid.data) == 5 and len(grid.layout.annotations) == 5
    with pytest.raises(ConfigError):
        viewers.image_grid_figure(np.zeros((2, 2, 2, 2)))


def test_setup_notebook_embeds_plotly_without_cdn_scripts():
    import plotly.graph_objects as go
    import plotly.io as pio

    old = pio.renderers.default
    try:
        viewers.setup_notebook()
        assert pio.renderers.default == "notebook"
        html = pio.renderers["notebook"].to_mimebundle(go.Figure(go.Scatter(x=[1])).to_dict())["text/html"]
        assert "Plotly.newPlot" in html and "cdnjs" not in html and 'src="http' not in html
    finally:
        pio.renderers.default = old


# ----------------------------------------------------------------------------- notebook runner
def notebook(path, *sources, params="SMOKE = False\nDATA_DIR = 'x'\nOUT_DIR = 'y'"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def test_run_notebooks_order_parameters_failure_and_report(tmp_path):
    from gmmplat.demo.notebooks import read_report, run_notebooks

    nbdir = tmp_path / "nb"
    nbdir.mkdir()
    notebook(nbdir / "00_write.ipynb", "import pathlib\npathlib.Path(OUT_DIR, 'seen.txt').write_text(f'{SMOKE} {DATA_DIR}')")
    notebook(nbdir / "01_fail.ipynb", "raise ValueError('broken on purpose')")
    notebook(nbdir / "02_later.ipynb", "print('never')")
    (nbdir / "notes.ipynb").write_text("{}")  # not an ordered notebook: ignored
    lines = []
    results = run_notebooks(nbdir, tmp_path / "out", parameters={"DATA_DIR": tmp_path / "d", "OUT_DIR": str(tmp_path)},
                            smoke=True, progress=lines.append)
    assert [(r.name, r.status) for r in results] == [("00_write.ipynb", "ok"), ("01_fail.ipynb", "failed"),
                                                     ("02_later.ipynb", "not run")]
    assert (tmp_path / "seen.txt").read_text() == f"True {tmp_path / 'd'}"
    assert "ValueError: broken on purpose" in results[1].error
    assert any("01_fail.ipynb FAILED" in line for line in lines)
    assert [r.status for r in read_report(tmp_path / "out")] == ["ok", "failed", "not run"]
    assert (tmp_path / "out" / "01_fail.ipynb").exists()  # the executed copy shows the failing cell


def test_demo_exit_codes_name_the_failing_notebook(tmp_path, capsys):
    import json

    from gmmplat.demo import run as demo
    from gmmplat.demo.notebooks import DATASETS
    from gmmplat.synthetic.simulate import ORIGIN_CONVENTION

    data = tmp_path / "data"
    for name in DATASETS:  # present, complete and current: the demo simulates nothing
        (data / name).mkdir(parents=True)
        (data / name / "metadata.json").write_text(json.dumps({"complete": True, "origin_convention": ORIGIN_CONVENTION}))
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    notebook(good / "00_ok.ipynb", "x = 1")
    notebook(bad / "00_bad.ipynb", "1 / 0")
    assert demo.main(["--data", str(data), "--out", str(tmp_path / "o1"), "--notebooks", str(good)]) == 0
    out = capsys.readouterr().out
    assert "[1/1] 00_ok.ipynb done in" in out and "already there" in out
    assert demo.main(["--data", str(data), "--out", str(tmp_path / "o2"), "--notebooks", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "notebook 00_bad.ipynb failed: ZeroDivisionError" in err
    assert demo.main(["--data", str(data), "--out", str(tmp_path / "o3"), "--notebooks", str(tmp_path / "none")]) == 2
