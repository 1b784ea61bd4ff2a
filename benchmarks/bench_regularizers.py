"""Cost of the regularizers and of the free decoder's smoothed output per training step.

Usage:  python benchmarks/bench_regularizers.py [--batch 32] [--threads 1] [--repeats 50]

GMMs: bundles of ideal 20-residue helices 10 Å apart (one Gaussian per Cα, one chain per
helix: the Cα graph of the backbone regularizer), and a dense cloud at all-atom density
(one Gaussian per ~11 Å³, no bonds) for the elastic network's neighbour limit.  Prints a
table: GMM, Gaussians, elastic-network pairs, milliseconds per step for ``elastic_network``
(the ``free`` preset's options) and ``ca_backbone``, the pairs' tensor memory per step, and the
free decoder (positions only; forward and backward from a batch of latent points) without and with
the ``free`` preset's smoothed output (``coarse_angstrom``), with the smoothing kernel's entries.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from gmmplat.decoders import FreeDecoder
from gmmplat.model.gmm import GMM
from gmmplat.regularizers import REGULARIZERS, ca_graph
from gmmplat.synthetic.structures import Helix
from gmmplat.train.presets import preset_data

_FREE = preset_data("free")["config"]
ELASTIC_NETWORK = next(r for r in _FREE["rounds"][0]["regularizers"] if r["kind"] == "elastic_network")
FREE_PRESET_DECODER_OPTIONS = _FREE["decoders"]["free"]["options"]


def helix_bundle(n_helices: int) -> GMM:
    side = int(np.ceil(np.sqrt(n_helices)))
    ca = [Helix((10.0 * (h % side), 10.0 * (h // side), 0.0), (0, 0, 1), 20).ca() for h in range(n_helices)]
    chain = np.repeat([f"H{h}" for h in range(n_helices)], 20)
    xyz = np.concatenate(ca)
    return GMM.from_arrays(xyz, 6.0, 1.5, 64, 2.0, extras=ca_graph(xyz, np.arange(len(xyz)), chain))


def dense_cloud(n: int) -> GMM:
    edge = (n * 11.0) ** (1 / 3)  # about one heavy atom per 11 Å³
    return GMM.from_arrays(np.random.default_rng(0).uniform(0, edge, (n, 3)), 6.0, 1.5, 64, 2.0)


def ms_per_step(reg, gmm: GMM, batch: int, repeats: int) -> float:
    params = (gmm.params[None].repeat(batch, 1, 1) + 0.3 * torch.randn(batch, gmm.n, 5)).requires_grad_(True)
    for _ in range(3):
        reg(params).backward()
    start = time.perf_counter()
    for _ in range(repeats):
        reg(params).backward()
    return (time.perf_counter() - start) / repeats * 1e3


def decoder_ms_per_step(decoder, batch: int, repeats: int) -> float:
    z = torch.randn(batch, decoder.latent_dim)
    for _ in range(3):
        decoder(z).sum().backward()
    start = time.perf_counter()
    for _ in range(repeats):
        decoder(z).sum().backward()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print("| GMM | Gaussians | network pairs | elastic_network ms/step | ca_backbone ms/step | pair tensors MB/step "
          "| free decoder ms/step | with the smoothed output ms/step | kernel entries |")
    print("|---|---|---|---|---|---|---|---|---|")
    cases = [(f"{h} helices (Cα)", helix_bundle(h)) for h in (10, 100, 1000)]
    cases += [(f"dense cloud, {n} (all-atom density)", dense_cloud(n)) for n in (20000,)]
    for label, gmm in cases:
        net = REGULARIZERS.build("elastic_network", gmm, weight=ELASTIC_NETWORK["weight"], **ELASTIC_NETWORK["options"])
        backbone = (f"{ms_per_step(REGULARIZERS.build('ca_backbone', gmm), gmm, args.batch, args.repeats):.1f}"
                    if "bonds" in gmm.extras else "–")
        mb = args.batch * net.n_pairs * 3 * 4 * 2 / 1e6  # the two gathered ends, float32
        plain = FreeDecoder(4, gmm, move_amplitude=False)
        smooth = FreeDecoder(4, gmm, **FREE_PRESET_DECODER_OPTIONS)
        print(f"| {label} | {gmm.n} | {net.n_pairs} | {ms_per_step(net, gmm, args.batch, args.repeats):.1f} | "
              f"{backbone} | {mb:.0f} | {decoder_ms_per_step(plain, args.batch, args.repeats):.1f} | "
              f"{decoder_ms_per_step(smooth, args.batch, args.repeats):.1f} | {smooth.kernel_weight.numel()} |",
              flush=True)


if __name__ == "__main__":
    main()
