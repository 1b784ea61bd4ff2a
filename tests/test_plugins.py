"""A decoder registered by a plugin file is covered by the step contract tests and trains with
``gmmplat train --plugin``; the run then loads without naming the plugin again."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_train_fixtures import make_dataset

from gmmplat import cli
from gmmplat.train import load_run

TESTS = Path(__file__).resolve().parent
PLUGIN = '''
"""One translation of the whole subset per particle."""
import torch

from gmmplat.decoders import DECODERS, Decoder
from gmmplat.model.nets import make_mlp


@DECODERS.register("plugin_shift")
class ShiftDecoder(Decoder):
    def __init__(self, latent_dim, neutral, subset=None, hidden=(8,), position_scale_angstrom=2.0):
        super().__init__(latent_dim, neutral, subset)
        self.use_columns(position_scale_angstrom=position_scale_angstrom)
        self.mlp = make_mlp(latent_dim, 3, hidden, zero_last=True)

    def forward(self, z):
        raw = self.mlp(z)[:, None, :].expand(-1, len(self.subset_index), -1)
        return self.subset_offsets(raw)
'''


def test_plugin_decoder_in_contract_tests_and_train(tmp_path, capsys):
    plugin = tmp_path / "shift_plugin.py"
    plugin.write_text(PLUGIN)
    env = {**os.environ, "GMMPLAT_TEST_PLUGINS": str(plugin), "PYTHONPATH": str(TESTS.parent)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
                           str(TESTS / "test_contracts.py"), "-k", "decoder_contract"],
                          capture_output=True, text=True, env=env, cwd=TESTS)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "PASSED test_contracts.py::test_decoder_contract[plugin_shift-cpu]" in done.stdout, done.stdout[-2000:]

    star, gmm, _ = make_dataset(tmp_path / "data", n=24)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({
        "latent_dim": 2, "encoder": {"kind": "image", "options": {"hidden": [8]}},
        "decoders": {"shift": {"kind": "plugin_shift"}},
        "rounds": [{"decoders": ["shift"], "epochs": 1, "batch_size": 12, "high_res_angstrom": 12.0}]}))
    out = tmp_path / "run"
    code = cli.main(["train", "--plugin", str(plugin), "--star", str(star), "--gmm", str(gmm), "--config", str(config),
                     "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "environment.json").read_text())["plugins"] == [str(plugin.resolve())]
    run = load_run(out)
    assert type(run.model.decoder[0]).registry_name == "plugin_shift"
