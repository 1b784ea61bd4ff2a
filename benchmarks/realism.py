"""Which nuisance of real data costs the accuracy?  Each alone, then all together (docs/benchmarks.md).

Usage:  python benchmarks/realism.py [--dataset bend] [--preset hierarchical] [--variants clean,junk,...]
                                     [--seed 0] [--work out/realism] [--threads 1]

For each variant the script simulates the dataset with that nuisance only (sizes of
:data:`gmmplat.synthetic.nuisance.REALISTIC`; ``all`` is the realistic variant itself), builds the
neutral GMM once per dataset as notebook 01 does (the consensus map and model do not depend on the
nuisances), trains the preset with the epochs of its notebook, and scores the run beside the
exact-likelihood oracle, which knows each particle's true pose, B-factor, scale and the noise
spectrum (``gmmplat evaluate --oracle``).  It prints one row per variant and appends it to
``WORK/realism.jsonl`` (one JSON object a line: rows differ in their keys).  Simulated data, GMMs and runs are kept in ``WORK`` and reused.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

VARIANTS = ("clean", "junk", "bfactor", "coloured", "scale", "pose", "all")  # and "other": junk of three kinds
EPOCHS = {"hierarchical": [5, 1], "free": [6, 1], "rigid": [12], "multi": [12, 10]}
DOMAIN = {"hinge": "moving_domain", "coupled": "moving_domain,shifting_helices", "bend": None}


def nuisances_for(variant: str):
    from gmmplat.synthetic.nuisance import REALISTIC, Nuisances

    none = Nuisances()
    return {
        "clean": none,
        "junk": replace(none, junk_fraction=REALISTIC.junk_fraction, junk_kinds=REALISTIC.junk_kinds),
        "other": replace(none, junk_fraction=REALISTIC.junk_fraction, junk_kinds=("empty", "fragment", "other")),
        "bfactor": replace(none, bfactor_range_angstrom2=REALISTIC.bfactor_range_angstrom2),
        "coloured": replace(none, noise_power_at_nyquist=REALISTIC.noise_power_at_nyquist),
        "scale": replace(none, scale_sigma=REALISTIC.scale_sigma),
        "pose": replace(none, pose_error_deg=REALISTIC.pose_error_deg,
                        shift_error_angstrom=REALISTIC.shift_error_angstrom),
        "all": REALISTIC,
        # pairs and leave-one-out sets: which nuisances cost more together than alone
        "all_but_pose": replace(REALISTIC, pose_error_deg=0.0, shift_error_angstrom=0.0),
        "pose_coloured": replace(none, pose_error_deg=REALISTIC.pose_error_deg,
                                 shift_error_angstrom=REALISTIC.shift_error_angstrom,
                                 noise_power_at_nyquist=REALISTIC.noise_power_at_nyquist),
        "pose_bfactor": replace(none, pose_error_deg=REALISTIC.pose_error_deg,
                                shift_error_angstrom=REALISTIC.shift_error_angstrom,
                                bfactor_range_angstrom2=REALISTIC.bfactor_range_angstrom2),
    }[variant]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="bend", choices=("hinge", "bend", "coupled"))
    ap.add_argument("--preset", default="hierarchical")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}, other, all_but_pose, pose_coloured, pose_bfactor")
    ap.add_argument("--seed", type=int, default=0, help="the simulation's and the training's seed")
    ap.add_argument("--work", type=Path, default=Path("out/realism"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="", help="a label for this code version in the CSV")
    ap.add_argument("--refine", default="", metavar="KEY=VALUE[,...]",
                    help="override refine options of the preset, e.g. pose_steps=30,junk_scale=0.5")
    ap.add_argument("--pose-samples", type=int, default=32,
                    help="pose samples of the oracle told only the stated poses (datasets with pose errors; 0: off)")
    ap.add_argument("--retrain", action="store_true", help="train again even when the run exists")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from gmmplat.analysis.oracle_report import score_runs_against_oracle
    from gmmplat.model.gmm import GMM
    from gmmplat.synthetic.simulate import simulate_dataset
    from gmmplat.train import preset, train
    from gmmplat.train.config import DataConfig, RefineConfig

    overrides = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", args.refine)):  # commas inside [...] belong to a list
        key, value = item.split("=", 1)
        overrides[key] = json.loads(value)
    work = args.work
    gmm_path = build_gmm(args.dataset, work)
    neutral = GMM.load(gmm_path)
    for variant in args.variants.split(","):
        data = work / "data" / f"{args.dataset}_{variant}_s{args.seed}"
        if not (data / "metadata.json").is_file():
            simulate_dataset(args.dataset, data, seed=args.seed, progress=False, nuisances=nuisances_for(variant))
        run_dir = work / "runs" / f"{args.dataset}_{variant}_{args.preset}_s{args.seed}{args.tag}"
        config = preset(args.preset, neutral, domain=DOMAIN[args.dataset], epochs=EPOCHS[args.preset],
                        seed=args.seed)
        if overrides:  # validated as a configuration file's refine section is
            config.refine = RefineConfig.from_dict({**asdict(config.refine), **overrides})
        config.data = DataConfig(star=str((data / "particles.star").resolve()), gmm=str(gmm_path.resolve()))
        if args.retrain and run_dir.exists():
            shutil.rmtree(run_dir)
        start, run_seconds = time.perf_counter(), None
        if not (run_dir / "model.pt").is_file():
            train(config, run_dir, reuse="if-same-config", progress=False)
            run_seconds = round(time.perf_counter() - start, 1)  # rounds, refinement, cycles, poses
        train_seconds = sum(float(r["seconds"]) for r in _losses(run_dir))
        oracle, results = score_runs_against_oracle(data, [run_dir], 1000, seed=0, write=False,
                                                    pose_samples=args.pose_samples)
        s = results[run_dir.name]
        o = oracle["oracle"]
        row = {"dataset": args.dataset, "variant": variant, "preset": args.preset, "seed": args.seed,
               "tag": args.tag, "spearman": s["oracle_comparison"]["spearman_abs"]["run"],
               "oracle_spearman": o["spearman_abs"],
               "morph_angstrom": s["oracle_comparison"]["mean_frame_rmsd_angstrom"]["run"],
               "oracle_morph_angstrom": o["mean_frame_rmsd_angstrom"],
               "junk_auc": s.get("junk_auc"), "train_seconds": round(train_seconds, 1), "run_seconds": run_seconds,
               **_marginal(s),
               }
        print(json.dumps(row), flush=True)
        with open(work / "realism.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")


def _marginal(scores: dict) -> dict:
    """The run and the pose-marginal oracle on that oracle's particles (datasets with pose errors)."""
    m = scores.get("oracle_pose_marginal_comparison")
    if not m:
        return {}
    return {"marginal_spearman": m["spearman_abs"]["run"], "marginal_oracle_spearman": m["spearman_abs"]["oracle"],
            "marginal_morph_angstrom": m["mean_frame_rmsd_angstrom"]["run"],
            "marginal_oracle_morph_angstrom": m["mean_frame_rmsd_angstrom"]["oracle"]}


def _losses(run_dir: Path) -> list[dict]:
    import pandas as pd

    path = run_dir / "losses.csv"
    return pd.read_csv(path).to_dict("records") if path.is_file() else []


def build_gmm(dataset: str, work: Path) -> Path:
    """The neutral GMM as notebook 01 builds it, from the clean dataset's map and model (cached)."""
    from gmmplat.io import read_map
    from gmmplat.neutral.pipeline import BuildOptions, build_neutral_gmm
    from gmmplat.synthetic.simulate import simulate_dataset

    out = work / "gmm" / dataset
    if (out / "gmm.npz").is_file():
        return out / "gmm.npz"
    data = work / "data" / f"{dataset}_map"
    if not (data / "metadata.json").is_file():
        simulate_dataset(dataset, data, n_particles=10, progress=False)
    masks = json.loads((data / "masks.json").read_text())["masks"]
    apix = read_map(data / "consensus_map.mrc").voxel_size_angstrom
    opts = BuildOptions(map_path=str(data / "consensus_map.mrc"), model_path=str(data / "neutral_model.pdb"),
                        out_dir=str(out), selection="ca", resolution_angstrom=max(6.0, 2.5 * apix), refine_steps=200,
                        small_gmm=32, masks=[f"{k}=residues:{v['selection']}" for k, v in masks.items()])
    build_neutral_gmm(opts, log=lambda line: None)
    return out / "gmm.npz"


if __name__ == "__main__":
    main()
