"""``gmmplat train``: presets, and a small end-to-end run whose latent space recovers the
simulated conformation (bad input: tests/test_bad_input.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr
from test_train_fixtures import make_dataset, one_thread  # noqa: F401 (autouse fixture)

from gmmplat import cli
from gmmplat.errors import ConfigError
from gmmplat.train import RunConfig, load_run, preset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    star, gmm, t = make_dataset(folder, n=120, snr=1.0, shift_angstrom=6.0, n_gaussians=40)
    return folder, star, gmm, t


def test_presets_build_and_print(data, capsys):
    folder, star, gmm, _ = data
    from gmmplat.model.gmm import GMM

    neutral = GMM.load(gmm)
    # the deformable presets' encoder and first round see 10 Å, the domain presets' 15 Å
    bands = {"rigid": 15.0, "hierarchical": 10.0, "free": 10.0, "multi": 15.0}
    for name, band in bands.items():
        cfg = preset(name, neutral, domain="domain")
        cfg.check_bands(neutral.box, neutral.pixel_size_angstrom)
        assert cfg.rounds[0].high_res_angstrom == band
        assert cfg.encoder.options["input_res_angstrom"] == band
    # shrinking the latent helps the rigid decoder only; the free decoders move positions only
    assert [preset(n, neutral, domain="domain").latent_shrink for n in ("rigid", "hierarchical", "free", "multi")] \
        == [0.03, 0.0, 0.0, 0.0]
    rigid_json = json.loads(preset("rigid", neutral, domain="domain").to_json())
    assert rigid_json["latent_shrink"] == 0.03 and RunConfig.from_dict(rigid_json).latent_shrink == 0.03
    for name, dec in (("multi", "core"), ("hierarchical", "hier")):
        assert preset(name, neutral, domain="domain").decoders[dec].options == {}  # positions only: the default
    assert preset("free", neutral).decoders["free"].options == {"coarse_angstrom": 6.0, "fine_scale": 0.3}
    # the deformable presets refine their latent in cycles; the others refine it once
    assert [preset(n, neutral, domain="domain").refine.cycles for n in ("rigid", "hierarchical", "free", "multi")] \
        == [0, 3, 3, 0]
    # the free decoder's cycles train at the first round's band only
    assert [preset(n, neutral).refine.cycle_epochs for n in ("hierarchical", "free")] == [[7, 2], [3, 0]]
    assert preset("hierarchical", neutral).rounds[0].learning_rate == 3e-3
    # the free preset holds its Gaussians to their neighbours in every round, with or without a Cα graph
    for r in preset("free", neutral).rounds:
        assert [(g.kind, g.weight, g.options) for g in r.regularizers] \
            == [("ca_backbone", 0.1, {}),
                ("elastic_network", 0.3, {"cutoff_angstrom": 10.0, "tolerance_angstrom": 1.0})]
    no_graph = GMM.from_arrays(neutral.xyz_angstrom.numpy(), 1.0, 1.5, neutral.box, neutral.pixel_size_angstrom)
    assert [g.kind for g in preset("free", no_graph).rounds[0].regularizers] == ["elastic_network"]
    assert all(g.kind != "elastic_network" for n in ("rigid", "hierarchical", "multi")
               for r in preset(n, neutral, domain="domain").rounds for g in r.regularizers)
    multi = preset("multi", neutral, domain="domain", epochs=[3, 1])
    assert [r.epochs for r in multi.rounds] == [3, 1]
    assert multi.rounds[1].decoders == ["domain", "core"] and multi.decoders["core"].subset == "!domain"
    assert [r.decoder_options for r in preset("hierarchical", neutral).rounds] == [{}, {"hier": {"train_transition": True}}]
    with pytest.raises(ConfigError, match="2 round"):
        preset("free", neutral, epochs=[1, 2, 3])
    code = cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--preset", "hierarchical", "--epochs", "4,2",
                     "--out", str(folder / "unused"), "--print-config"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and [r["epochs"] for r in printed["rounds"]] == [4, 2]
    assert printed["data"]["star"] == str(star) and not (folder / "unused").exists()


def test_small_rigid_run_recovers_conformation(data, tmp_path, capsys):
    """Acceptance in miniature: 120 particles at SNR 1, the rigid preset with small networks;
    |Spearman| between the truth and the best of the first three latent PCs (0.87 measured)."""
    folder, star, gmm, t = data
    cfg = preset("rigid", __import__("gmmplat.model.gmm", fromlist=["GMM"]).GMM.load(gmm), domain="domain", epochs=6,
                 batch_size=16).to_dict()
    cfg["encoder"]["options"]["hidden"] = [64, 32]
    cfg["decoders"]["domain"]["options"]["hidden"] = [32]
    cfg.pop("data")
    (tmp_path / "run.json").write_text(json.dumps(cfg))
    code = cli.main(["train", "--star", str(star), "--gmm", str(gmm), "--config", str(tmp_path / "run.json"),
                     "--out", str(tmp_path / "run"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "done:" in capsys.readouterr().out
    z = load_run(tmp_path / "run").latent.astype(np.float64)
    zc = z - z.mean(0)
    pcs = zc @ np.linalg.svd(zc, full_matrices=False)[2].T
    best = max(abs(spearmanr(pcs[:, i], t)[0]) for i in range(3))
    assert best >= 0.7, best


def test_presets_with_several_domains(data):
    """--domain A,B: the rigid decoder moves each mask as its own body, the multi preset's free core gets
    the Gaussians outside all of them, the free preset the Gaussians inside any; unknown or repeated
    names are one-line errors."""
    from gmmplat.model.gmm import GMM
    from gmmplat.train.builder import subset_mask

    _, _, gmm, _ = data
    neutral = GMM.load(gmm)
    domain = np.asarray(neutral.masks()["domain"], dtype=bool)
    other = np.zeros_like(domain)
    other[np.flatnonzero(~domain)[:3]] = True
    neutral.extras["mask__other"] = other
    multi = preset("multi", neutral, domain="domain, other")
    assert multi.decoders["domain"].options["domains"] == ["domain", "other"]
    assert multi.decoders["core"].subset == "!domain,other"
    assert preset("rigid", neutral, domain=["domain", "other"]).decoders["domain"].options["domains"] == ["domain", "other"]
    free = preset("free", neutral, domain="domain,other")
    assert free.decoders["free"].subset == "domain,other"
    assert free.rounds[0].regularizers[-1].options["subset"] == "domain,other"  # the network of the moving part
    np.testing.assert_array_equal(subset_mask(neutral, "!domain,other", "x").numpy(), ~(domain | other))
    np.testing.assert_array_equal(subset_mask(neutral, "domain,other", "x").numpy(), domain | other)
    np.testing.assert_array_equal(subset_mask(neutral, "!domain", "x").numpy(), ~domain)
    with pytest.raises(ConfigError, match="no mask 'nope'"):
        subset_mask(neutral, "!domain,nope", "decoders.core")
    with pytest.raises(ConfigError, match="no mask 'nope' in the GMM"):
        preset("multi", neutral, domain="domain,nope")
    with pytest.raises(ConfigError, match="named twice"):
        preset("multi", neutral, domain="domain,domain")
    with pytest.raises(ConfigError, match="needs --domain"):
        preset("multi", neutral, domain=" , ")
