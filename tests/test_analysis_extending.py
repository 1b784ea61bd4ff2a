"""docs/extending.md runs: its decoder file registers, is zero at initialisation, keeps to its
subset, and a run folder using it loads through the analysis commands' --plugin."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"


def _block(marker: str) -> str:
    text = DOC.read_text()
    m = re.search(re.escape(marker) + r"\s*```python\n(.*?)```", text, re.S)
    assert m, f"no python block after {marker!r} in {DOC}"
    return m.group(1)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    from gmmplat.analysis.runs import import_plugins

    folder = tmp_path_factory.mktemp("plugin")
    path = folder / "linear_motion.py"
    path.write_text(_block("<!-- decoder file: linear_motion.py -->"))
    sys.path.insert(0, str(folder))
    try:
        (module,) = import_plugins([str(path)])
        yield path, module
    finally:
        sys.path.remove(str(folder))


def test_doc_decoder_registers_and_is_zero_at_init(plugin):
    from gmmplat.decoders import DECODERS
    from gmmplat.model.gmm import GMM

    _, module = plugin
    assert "linear_motion" in DECODERS.names()
    assert DECODERS.get("linear_motion") is module.LinearMotionDecoder
    g = torch.Generator().manual_seed(0)
    mask = np.zeros(40, dtype=bool)
    mask[10:25] = True
    neutral = GMM.from_arrays(torch.randn(40, 3, generator=g) * 10, 1.0, 3.0, 64, 2.0, extras={"mask__dom": mask})
    dec = DECODERS.build("linear_motion", 3, neutral, subset=torch.as_tensor(mask), position_scale_angstrom=10.0)
    z = torch.randn(16, 3, generator=g)
    assert torch.equal(dec(z), torch.zeros(16, 40, 5))
    with torch.no_grad():
        dec.basis.normal_(generator=g)
    out = dec(z)
    assert out[:, mask, :3].abs().min() > 0 or out[:, mask, :3].abs().max() > 1.0  # now it moves
    assert torch.equal(out[:, ~mask], torch.zeros_like(out[:, ~mask]))  # nothing outside the subset
    assert torch.equal(out[..., 3:], torch.zeros_like(out[..., 3:]))  # positions only by default
    torch.testing.assert_close(dec(2 * z), 2 * out)  # linear in z


def test_doc_check_snippet_runs(plugin, capsys):
    exec(compile(_block("<!-- decoder check -->"), "extending.md:check", "exec"), {})
    assert "torch.Size([8, 100, 5])" in capsys.readouterr().out


def test_run_with_the_doc_decoder_loads_with_plugin(plugin, tmp_path):
    """A saved run whose decoder is the doc's loads through `gmmplat morph --plugin` and decodes."""
    from gmmplat.model.gmm import GMM
    from gmmplat.synthetic.motions import get_motion
    from gmmplat.train.builder import build_model_for_round
    from gmmplat.train.config import RunConfig
    from gmmplat.train.outputs import save_model

    path, _ = plugin
    motion = get_motion("hinge")
    centre = np.array([50.0, 60.0, 70.0])
    motion.model.to_structure(motion.model.xyz + centre).write_pdb(str(tmp_path / "model.pdb"))
    ca = motion.model.xyz[motion.model.ca_mask]
    neutral = GMM.from_arrays(ca, 1.0, 3.0, 64, 2.0, box_centre_world_angstrom=centre)
    neutral.save(tmp_path / "gmm.npz")
    config = RunConfig.from_dict({
        "latent_dim": 2, "encoder": {"kind": "image", "options": {"input_res_angstrom": 15}},
        "decoders": {"motion": {"kind": "linear_motion", "options": {"position_scale_angstrom": 10.0}}},
        "rounds": [{"decoders": ["motion"], "epochs": 1, "high_res_angstrom": 15}],
    })
    model, _, decoders, _, _ = build_model_for_round(config, neutral, 0)
    with torch.no_grad():
        decoders["motion"].basis[0, :, 0] = 0.5  # z0 = 1 moves everything 5 Å along x
    run = tmp_path / "run"
    run.mkdir()
    save_model(run / "model.pt", config, model, neutral, str(tmp_path / "gmm.npz"), 0)
    np.save(run / "latent.npy", np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32))
    from gmmplat.cli import main

    assert main(["morph", "--run", str(run), "--model", str(tmp_path / "model.pdb"), "--out", str(tmp_path / "m.pdb"),
                 "--z", "0,0; 1,0", "--plugin", str(path)]) == 0
    from gmmplat.analysis.evaluate import read_model_frames

    frames = read_model_frames(tmp_path / "m.pdb")
    np.testing.assert_allclose(frames[1] - frames[0], np.broadcast_to([5.0, 0.0, 0.0], frames[0].shape), atol=2e-3)
    # the run records its plugin, so a fresh process loads it without --plugin
    assert torch.load(run / "model.pt", weights_only=False)["plugins"] == [str(path.resolve())]
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "gmmplat.cli", "morph", "--run", str(run), "--model",
                           str(tmp_path / "model.pdb"), "--out", str(tmp_path / "m2.pdb"), "--z", "0,0; 1,0"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(read_model_frames(tmp_path / "m2.pdb"), frames, atol=1e-4)


def test_missing_plugin_is_one_line_error(tmp_path):
    from gmmplat.analysis.runs import import_plugins
    from gmmplat.errors import InputError

    with pytest.raises(InputError, match="plugin file not found"):
        import_plugins([str(tmp_path / "nope.py")])
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(InputError, match="plugin import failed \\(RuntimeError: boom second line\\)") as e:
        import_plugins([str(tmp_path / "broken.py")])
    assert "\n" not in str(e.value)


def _json_block(marker: str) -> dict:
    import json

    m = re.search(re.escape(marker) + r"\s*```json\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"no json block after {marker!r} in {DOC}"
    return json.loads(m.group(1))


def test_doc_decoder_loss_and_projector_train_and_score(plugin, tmp_path):
    """The page's three files as plugins: each passes the step contract tests, ``gmmplat train --plugin``
    trains the page's configuration with all three, ``gmmplat evaluate`` scores it without --plugin."""
    import json
    import subprocess

    from test_train_fixtures import make_dataset

    from gmmplat.cli import main

    decoder_path, _ = plugin
    files = [decoder_path]
    for marker, name in [("<!-- loss file: correlation_loss.py -->", "correlation_loss.py"),
                         ("<!-- projector file: chunked_projector.py -->", "chunked_projector.py")]:
        files.append(tmp_path / name)
        files[-1].write_text(_block(marker))
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": str(tests.parent), "GMMPLAT_TEST_PLUGINS": os.pathsep.join(map(str, files))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                           str(tests / "test_contracts.py"), "-k", "linear_motion or correlation or dense_chunked"],
                          capture_output=True, text=True, env=env, cwd=tests)
    assert done.returncode == 0, done.stdout[-2000:]
    for case in ("decoder_contract[linear_motion-cpu]", "loss_contract[correlation-cpu]",
                 "projector_contract[dense_chunked-cpu]"):
        assert f"PASSED test_contracts.py::test_{case}" in done.stdout, done.stdout[-2000:]

    star, gmm, t = make_dataset(tmp_path / "data", n=36)
    config = _json_block("<!-- config: run_all.json -->")
    config["decoders"]["motion"]["subset"] = "domain"  # the mask of this small dataset
    config["rounds"][0].update(epochs=1, batch_size=12)
    (tmp_path / "run_all.json").write_text(json.dumps(config))
    plugins = [a for f in files for a in ("--plugin", str(f))]
    assert main(["train", *plugins, "--star", str(star), "--gmm", str(gmm), "--config", str(tmp_path / "run_all.json"),
                 "--out", str(tmp_path / "runs" / "all"), "--no-progress"]) == 0
    import pandas as pd

    pd.DataFrame({"particle_index": np.arange(len(t)), "t": t}).to_csv(tmp_path / "truth.csv", index=False)
    env.pop("GMMPLAT_TEST_PLUGINS")
    done = subprocess.run([sys.executable, "-m", "gmmplat.cli", "evaluate", "--run", str(tmp_path / "runs" / "all"),
                           "--truth", str(tmp_path / "truth.csv")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    scores = json.loads((tmp_path / "runs" / "all" / "scores.json").read_text())
    assert 0.0 <= scores["spearman_abs"] <= 1.0 and scores["run"] == str((tmp_path / "runs" / "all").absolute())
