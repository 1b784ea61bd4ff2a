"""How far do the decoders carry the motion when the latent is perfect?  (the decoder limit)

Usage:  python benchmarks/decoder_limit.py [--runs bend_hierarchical,...] [--latents truth,oracle]
                                           [--epochs 30,6] [--out out/decoder_limit] [--threads 2]

Needs `make demo` (the sample data and their neutral GMMs in out/gmm).  For each run of the
notebooks (the same preset and epochs as notebooks 02–05) the decoders are trained with the
`truth` encoder (`gmmplat train --truth-latent`), on one of two latents:

* ``truth``: every particle's true ``t`` (the latent no method can beat);
* ``oracle``: the exact-likelihood oracle's posterior-mean ``t`` of every particle
  (`gmmplat.analysis.oracle`, all particles): the best latent the images themselves allow,
  with the oracle's noise, which a posterior mean keeps unbiased (E[t | t̂] = t̂).

Each run is scored as `gmmplat evaluate --oracle` scores the notebooks' runs (Cα RMSD on the
oracle's 1000 particles, amplitude ratios over all), and printed as a row of the table in
docs/benchmarks.md, "Decoder limit", beside the morph target (2× the oracle's RMSD).  The
distance from a trained run to these rows is what its encoder's latent costs; the distance
from these rows to the target is the decoders' own.  A run already in ``--out`` is replaced:
trained again with the current presets.  The oracle's latent is computed once per dataset and
kept in ``--out``.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

#: The notebooks' runs: dataset, preset, domain, epochs per round (notebooks 02–05).
RUNS = {
    "hinge_rigid": ("hinge", "rigid", "moving_domain", [12]),
    "bend_hierarchical": ("bend", "hierarchical", None, [12, 3]),
    "bend_free": ("bend", "free", None, [12, 6]),
    "coupled_multi": ("coupled", "multi", "moving_domain,shifting_helices", [12, 10]),
}


def oracle_latent_csv(dataset: Path, out: Path) -> Path:
    """``particle_index, t`` with t the oracle's posterior mean, for every particle (cached in ``out``)."""
    import numpy as np
    import pandas as pd

    from gmmplat.analysis.oracle import load_simulated_dataset, run_oracle

    path = out / f"oracle_latent_{dataset.name}.csv"
    if not path.is_file():
        res = run_oracle(load_simulated_dataset(dataset), n_particles=None, progress=True)
        out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pd.DataFrame({"particle_index": np.asarray(res.rows), "t": res.t_mean}).to_csv(tmp, index=False)
        tmp.replace(path)
    return path


def train(name: str, latent: str, epochs: list[int], out: Path, threads: int) -> tuple[Path, float]:
    from gmmplat import cli

    dataset, preset, domain, _ = RUNS[name]
    data = Path("sample_data") / dataset
    truth = data / "truth.csv" if latent == "truth" else oracle_latent_csv(data, out)
    run = out / f"{name}_{latent}_{'_'.join(map(str, epochs))}"
    if run.exists():  # this script's own output: trained again with the current presets
        shutil.rmtree(run)
    args = ["train", "--star", str(data / "particles.star"), "--gmm", f"out/gmm/{dataset}/gmm.npz",
            "--preset", preset, "--epochs", ",".join(map(str, epochs)), "--truth-latent", str(truth),
            "--out", str(run), "--threads", str(threads), "--no-progress", "--seed", "0"]
    if domain:
        args += ["--domain", domain]
    start = time.perf_counter()
    if cli.main(args) != 0:
        raise SystemExit(f"training {run} failed")
    return run, time.perf_counter() - start


def score(name: str, run: Path) -> str:
    import numpy as np

    from gmmplat.analysis.oracle_report import compare, oracle_for
    from gmmplat.analysis.runs import load_analysis_run, score_run

    data = Path("sample_data") / RUNS[name][0]
    o = oracle_for(data)
    files = [data / n for n in ("truth.csv", "truth_frames.pdb", "neutral_model.pdb")]
    ar = load_analysis_run(run)
    everyone = score_run(ar, *files)
    c = compare(score_run(ar, *files, rows=np.asarray(o["rows"])), o)
    rmsd = c["mean_frame_rmsd_angstrom"]
    masks = ", ".join(f"{k[len('amplitude_ratio_'):]} {v:.2f}" for k, v in everyone.items()
                      if k.startswith("amplitude_ratio_"))
    return (f"{rmsd['run']:.2f} ({rmsd['fraction']:.2f}) | {2 * rmsd['oracle']:.2f} | "
            f"{everyone['amplitude_ratio']:.2f} | {masks}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    ap.add_argument("--latents", default="truth,oracle", help="truth, oracle or both")
    ap.add_argument("--epochs", help="epochs per round instead of the notebooks' (e.g. 30,6; one run only)")
    ap.add_argument("--out", default="out/decoder_limit")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown or (args.epochs and len(names) != 1):
        raise SystemExit(f"unknown run {unknown[0]!r}; known: {', '.join(RUNS)}" if unknown
                         else "--epochs goes with one run (--runs NAME)")
    out = Path(args.out)
    print("| dataset | decoder | latent | epochs | Cα RMSD Å (fraction) | target (2× oracle) | amplitude ratio | "
          "per mask | training s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        dataset, preset, _, epochs = RUNS[name]
        epochs = [int(e) for e in args.epochs.split(",")] if args.epochs else epochs
        for latent in [v.strip() for v in args.latents.split(",") if v.strip()]:
            if latent not in ("truth", "oracle"):
                raise SystemExit(f"unknown latent {latent!r}: truth or oracle")
            run, seconds = train(name, latent, epochs, out, args.threads)
            print(f"| {dataset} | {preset} | {latent} | {'+'.join(map(str, epochs))} | {score(name, run)} | "
                  f"{seconds:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
