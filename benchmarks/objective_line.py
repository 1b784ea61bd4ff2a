"""Does the training objective prefer the true motion?  (`bend`, a run on the true latent)

Usage:  python benchmarks/objective_line.py RUN [--data sample_data/bend] [--particles 160]

RUN is a `bend` run trained on the true latent (`gmmplat train --truth-latent
sample_data/bend/truth.csv ...`; docs/benchmarks.md, "Elastic network").  For the end frames
and two inner ones, on the particles of that frame, the script decodes the run's GMM at each
particle's latent ("decoded") and builds the GMM that moves as the atoms do: the run's own GMM
at the middle frame (t = 0), its centres moved by the simulation's deformation to the frame's
``t`` ("true").  Along the line ``decoded + a · (true − decoded)`` it prints, in each round's
band, the data term (the round's loss, relative to a = 0) and every regularizer of the round
(weighted, as training adds them).  A data term that barely changes along the line while a
regularizer grows means the regularizer, not the images, holds the decoded motion back.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

STEPS = (-0.2, 0.0, 0.5, 1.0, 1.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--data", default="sample_data/bend")
    ap.add_argument("--particles", type=int, default=160, help="particles per frame")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from gmmplat.analysis.evaluate import load_truth, read_model_frames
    from gmmplat.analysis.runs import load_analysis_run
    from gmmplat.io.dataset import ParticleDataset
    from gmmplat.io.models import read_model
    from gmmplat.model.gmm import XYZ
    from gmmplat.synthetic.motions import get_motion
    from gmmplat.train.builder import build_round_steps

    data = Path(args.data)
    ar = load_analysis_run(args.run)
    cfg, neutral = ar.run.config, ar.neutral
    truth = load_truth(data / "truth.csv")
    frame = truth["frame"].to_numpy()
    motion = get_motion("bend")
    ca = read_model(data / "neutral_model.pdb", selection="ca")
    frames = read_model_frames(data / "truth_frames.pdb")[:, ca.atom_index]
    F, mid = len(frames), len(frames) // 2
    frame_t = np.linspace(-1.0, 1.0, F)
    # the motion's own frame: its middle conformation sits at the file's middle frame minus this offset
    offset = (frames[mid] - motion.coordinates_batch(np.zeros(1))[0][motion.model.ca_mask]).mean(0)
    dataset = ParticleDataset(cfg.data.source(), invert_contrast=cfg.data.invert_contrast, symmetry=cfg.data.symmetry)
    latent = ar.latent.reshape(len(frame), -1)
    middle = ar.decode_fn(torch.as_tensor(np.median(latent[frame == mid], 0), dtype=torch.float32)[None])[0]
    world = middle[:, XYZ].double().numpy() + neutral.box_centre_world_angstrom
    rms = float((middle - neutral.params.float())[:, XYZ].norm(dim=1).pow(2).mean().sqrt())
    print(f"{args.run}: the decoded middle-frame GMM is {rms:.2f} Å RMS from the neutral GMM")
    for r in range(len(cfg.rounds)):
        steps = build_round_steps(cfg, r, neutral)
        regs = [type(g).__name__ for g in steps.regularizers]
        print(f"\nround {r + 1} ({cfg.rounds[r].high_res_angstrom or 'Nyquist'} Å): data term relative to a = 0; "
              f"{', '.join(regs) or 'no regularizers'}")
        for f in (0, 2, F - 3, F - 1):
            idx = np.nonzero(frame == f)[0][: args.particles]
            batch = next(iter(dataset.loader([idx], 0)))
            with torch.no_grad():
                decoded = ar.decode_fn(torch.as_tensor(latent[idx], dtype=torch.float32))
                true = middle.clone()
                true[:, XYZ] = torch.as_tensor(motion.deform(world - offset, np.array([frame_t[f]]))[0] + offset
                                               - neutral.box_centre_world_angstrom, dtype=true.dtype)
                cells = []
                base = None
                for a in STEPS:
                    p = decoded + a * (true[None] - decoded)
                    d = float(steps.loss(steps.image_model.predict(p, batch), steps.image_model.observe(batch)).mean())
                    base = d if a == 0.0 else base
                    cells.append((a, d, [float(g(p)) for g in steps.regularizers]))
            print(f"  frame {f} (t {frame_t[f]:+.1f}): " + " | ".join(
                f"a {a:+.1f}: data {d - base:+.5f}, regs " + " ".join(f"{x:.4f}" for x in rg) for a, d, rg in cells))


if __name__ == "__main__":
    main()
