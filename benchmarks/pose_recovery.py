"""How much of each pose error a run's pose refinement recovers, against the simulation's truth.

Usage:  python benchmarks/pose_recovery.py DATASET RUN

DATASET: a simulated dataset with pose errors (``truth.csv`` holds the true poses, ``particles.star``
the stated ones); RUN: a run trained on it with ``refine.pose_steps`` (``RUN/pose_correction.npy``).
Per axis of the rotation vector and of the origin, over the particles that are not junk: the spread
of the correction the stated pose needs, of the run's correction, the slope and correlation of the
run's on the needed one, and the spread of what is left.  For a posterior-mean estimate of Gaussian
errors, slope ≈ correlation² ≈ the share of each error's variance one image pins down
(docs/benchmarks.md, "Real data").
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("run", type=Path)
    args = ap.parse_args()

    import pandas as pd
    import starfile
    import torch
    from scipy.spatial.transform import Rotation

    from gmmplat.physics.geometry import euler_to_matrix

    truth = pd.read_csv(args.dataset / "truth.csv")
    stated = starfile.read(args.dataset / "particles.star", always_dict=True)["particles"]

    def matrices(frame, cols):
        return euler_to_matrix(*(torch.tensor(frame[c].to_numpy(), dtype=torch.float64) for c in cols)).numpy()

    true_A = matrices(truth, ("rot_deg", "tilt_deg", "psi_deg"))
    stated_A = matrices(stated, ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"))
    # the run corrects A' = exp([ω]×) A_stated, so the needed ω is the rotation vector of A_true A_statedᵀ
    need_deg = Rotation.from_matrix(true_A @ np.swapaxes(stated_A, 1, 2)).as_rotvec(degrees=True)
    need_shift = np.stack([truth["shift_x_angstrom"] - stated["rlnOriginXAngst"],
                           truth["shift_y_angstrom"] - stated["rlnOriginYAngst"]], 1)
    need = np.concatenate([need_deg, need_shift], 1)
    corr = np.load(args.run / "pose_correction.npy")  # (n, 5): rotation vector in degrees, origin in Å
    keep = truth["junk"].to_numpy() == 0 if "junk" in truth else np.ones(len(truth), bool)
    print("| axis | needed sd | run's sd | slope | correlation | left sd |")
    print("|---|---|---|---|---|---|")
    for j, name in enumerate(("ω_x (°)", "ω_y (°)", "ω_z (°)", "origin x (Å)", "origin y (Å)")):
        e, x = need[keep, j], corr[keep, j]
        print(f"| {name} | {e.std():.2f} | {x.std():.2f} | {np.dot(x, e) / np.dot(e, e):.3f} | "
              f"{np.corrcoef(x, e)[0, 1]:.3f} | {(e - x).std():.2f} |")


if __name__ == "__main__":
    main()
