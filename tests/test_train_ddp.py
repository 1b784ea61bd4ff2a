"""Two processes (gloo, CPU) with DistributedDataParallel train the same model as one process."""
from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from test_train_fixtures import make_dataset, one_thread  # noqa: F401 (autouse fixture)
from torch import nn

from gmmplat.encoders import ENCODERS, Encoder
from gmmplat.train import RunConfig, Trainer
from gmmplat.train.distributed import init_distributed, shutdown


@ENCODERS.register("test_flat_image")
class FlatImageEncoder(Encoder):
    """Stand-in encoder without batch statistics (the image encoder's running input scale
    is a per-process batch statistic, which data-parallel training cannot reproduce exactly)."""

    def __init__(self, latent_dim, context, scale: float = 1.0):
        super().__init__(latent_dim, context)
        self.scale = float(scale)
        self.net = nn.Sequential(nn.Linear(context.band.box**2, 16), nn.Tanh(), nn.Linear(16, latent_dim))

    def forward(self, batch):
        return self.net(batch.images.flatten(1) / self.scale)


STAND_IN = {"kind": "test_flat_image", "options": {"scale": 30.0}}
# the real image encoder: its running input scale is a batch statistic, gathered over processes
IMAGE = {"kind": "image", "options": {"hidden": [16]}}


def config_dict(star, gmm, encoder=STAND_IN) -> dict:
    return {
        "latent_dim": 2, "latent_noise_std": 0.1, "latent_penalty": 0.01,
        "encoder": encoder,
        "decoders": {"dom": {"kind": "rigid", "options": {"domains": ["domain"], "hidden": [16]}},
                     # the core with the smoothed output: its kernel is a buffer rebuilt in every process
                     "core": {"kind": "free", "subset": "!domain",
                              "options": {"hidden": [16], "coarse_angstrom": 8.0}}},
        "rounds": [
            {"decoders": ["dom"], "epochs": 2, "batch_size": 10, "learning_rate": 3e-3, "high_res_angstrom": 12.0},
            {"decoders": ["dom", "core"], "epochs": 1, "batch_size": 10, "learning_rate": 1e-3,
             "regularizers": [{"kind": "ca_backbone", "weight": 0.5}]},
        ],
        "data": {"star": str(star), "gmm": str(gmm)},
    }


def _worker(rank: int, world: int, port: int, cfg: dict, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    ctx = init_distributed("cpu")
    try:
        Trainer(RunConfig.from_dict(cfg), out, progress=False, dist=ctx).run()
    finally:
        shutdown(ctx)
    # Done and the group left: skip the interpreter's teardown, where gloo's threads once aborted a
    # worker ("terminate called without an active exception") after its run had finished.  What
    # these tests check is the run folder, read by the parent.
    os._exit(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("encoder", [STAND_IN, IMAGE], ids=["stand_in", "image"])
def test_two_process_gloo_matches_single_process(tmp_path, encoder):
    # 37 particles: 33 train items -> global batches 10, 10, 10, 3 (uneven shards 2 + 1 in the last)
    star, gmm, _ = make_dataset(tmp_path / "data", n=37, snr=2.0)
    cfg = config_dict(star, gmm, encoder)
    Trainer(RunConfig.from_dict(cfg), tmp_path / "single", progress=False).run()
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path / "ddp")), nprocs=2, join=True)

    single = torch.load(tmp_path / "single" / "model.pt", weights_only=False)["state_dict"]
    ddp = torch.load(tmp_path / "ddp" / "model.pt", weights_only=False)["state_dict"]
    initial = Trainer(RunConfig.from_dict(cfg), tmp_path / "init", progress=False)
    assert single.keys() == ddp.keys()
    moved = 0.0
    for k in single:
        if single[k].is_floating_point():
            assert torch.allclose(single[k], ddp[k], atol=1e-4, rtol=1e-4), k
    # training moved the parameters far more than the tolerance
    from gmmplat.train.builder import build_model_for_round

    fresh = build_model_for_round(initial.config, initial.neutral, 1)[0].state_dict()
    moved = max(float((single[k] - fresh[k]).abs().max()) for k in single if single[k].is_floating_point())
    assert moved > 1e-2
    import numpy as np

    np.testing.assert_allclose(np.load(tmp_path / "single" / "latent.npy"), np.load(tmp_path / "ddp" / "latent.npy"),
                               atol=1e-4)
    assert not (tmp_path / "ddp" / ".checkpoint.pt.tmp").exists()


def test_two_process_run_refines_on_the_main_process(tmp_path):
    """With latent refinement, the main process refines while the other waits; the run folder holds both latents."""
    import json

    import numpy as np

    star, gmm, _ = make_dataset(tmp_path / "data", n=37, snr=2.0)
    cfg = {**config_dict(star, gmm), "refine": {"anchors": 4, "high_res_angstrom": 12.0}}
    Trainer(RunConfig.from_dict(cfg), tmp_path / "single", progress=False).run()
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path / "ddp")), nprocs=2, join=True)
    for name in ("single", "ddp"):
        run = tmp_path / name
        info = json.loads((run / "refine.json").read_text())
        assert info["n_anchors"] == 4 and info["n_particles"] == 37
        assert np.load(run / "latent.npy").shape == np.load(run / "latent_encoder.npy").shape == (37, 2)
    np.testing.assert_allclose(np.load(tmp_path / "single" / "latent_encoder.npy"),
                               np.load(tmp_path / "ddp" / "latent_encoder.npy"), atol=1e-3)
