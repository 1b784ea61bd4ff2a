"""How closely can a GMM fitted to density carry a known motion to the atoms?  (`bend` sample)

Usage:  python benchmarks/morph_floor.py [--gmm out/gmm/bend/gmm.npz] [--data sample_data/bend] [--positions-only]

Needs `make demo` (the sample data and its neutral GMM).  For true frames of `bend` the
script renders the clean density exactly as the simulation renders the consensus map (the
frame's atoms, electrons as amplitudes, σ 3 Å), and

1. refits the neutral GMM to the map of the middle frame (t = 0): the reference GMM;
2. moves the reference GMM's centres by the simulation's own deformation to frame ``t``: the
   GMM that moves exactly as the atoms do ("true-moved");
3. refits that GMM to the frame's clean map (200 steps at 6 Å, as `gmmplat build`).

Each GMM is carried to the atoms with the morph of `gmmplat analyze` (reference → GMM) and its
Cα RMSD to the true frame is printed, with the drift of the refit from the true-moved centres.
The refit shows how far a GMM that explains the density exactly (no noise, no latent) moves
away from the atoms' motion: a floor for any decoder fitted to images.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gmm", default="out/gmm/bend/gmm.npz")
    ap.add_argument("--data", default="sample_data/bend")
    ap.add_argument("--positions-only", action="store_true", help="refit positions only (amplitudes, widths fixed)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from gmmplat.analysis.evaluate import read_model_frames
    from gmmplat.analysis.morph import ModelMorpher
    from gmmplat.io.models import read_model
    from gmmplat.io.mrc import MapData
    from gmmplat.model.gmm import GMM, XYZ
    from gmmplat.neutral.refine import refine_gmm, scale_to_map
    from gmmplat.synthetic.images import render_volume
    from gmmplat.synthetic.motions import get_motion

    data = Path(args.data)
    meta = json.loads((data / "metadata.json").read_text())
    opts = meta["options"]
    box, apix, sigma = opts["box"], opts["pixel_size_angstrom"], opts["sigma_angstrom"]
    centre = np.asarray(meta["box_centre_world_angstrom"])
    motion = get_motion("bend")
    ca = read_model(data / "neutral_model.pdb", selection="ca")
    frames = read_model_frames(data / "truth_frames.pdb")[:, ca.atom_index]
    frame_t = np.linspace(-1, 1, len(frames))
    # the motion's own frame: its middle conformation sits at the neutral model's Cα minus this offset
    offset = (frames[len(frames) // 2] - motion.coordinates_batch(np.zeros(1))[0][motion.model.ca_mask]).mean(0)
    fit_all = not args.positions_only

    def refit(t: float, start: GMM, scale: bool) -> GMM:
        xyz = motion.coordinates_batch(np.array([t]))[0]
        volume = render_volume(xyz, motion.model.electrons, box, apix, sigma)
        md = MapData(volume.astype(np.float32), apix, centre - box // 2 * apix)
        if scale:
            start, _ = scale_to_map(start, md, 6.0)
        return refine_gmm(start, md, 6.0, steps=200, fit_amplitude=fit_all, fit_sigma=fit_all).gmm

    def moved(g: GMM, t: float) -> GMM:
        out = copy.copy(g)
        p = g.params.detach().clone().double()
        world = p[:, XYZ].numpy() + g.box_centre_world_angstrom
        p[:, XYZ] = torch.as_tensor(motion.deform(world - offset, np.array([t]))[0] + offset - g.box_centre_world_angstrom)
        out.params = p.to(g.params.dtype)
        return out

    reference = refit(0.0, GMM.load(args.gmm), scale=True)
    morpher = ModelMorpher(reference, ca)
    print(f"bend: refit of {'positions' if args.positions_only else 'positions, amplitudes and widths'}")
    print("| frame | t | true-moved GMM, morph Cα RMSD Å | refit to the clean frame map, Å | refit drift of the centres, Å rms |")
    print("|---|---|---|---|---|")
    for f in (0, 2, 8, 10):
        t = float(frame_t[f])
        true_moved = moved(reference, t)
        fitted = refit(t, true_moved, scale=False)
        rmsd = []
        for g in (true_moved, fitted):
            morphed = morpher.morph(lambda z, g=g: g.params[None].to(torch.float32), np.zeros((1, 1), np.float32))[0]
            rmsd.append(float(np.sqrt(((morphed - frames[f]) ** 2).sum(-1).mean())))
        diff = (fitted.params[:, XYZ] - true_moved.params[:, XYZ]).detach().double()
        drift = float(diff.pow(2).sum(-1).mean().sqrt())
        print(f"| {f} | {t:+.1f} | {rmsd[0]:.2f} | {rmsd[1]:.2f} | {drift:.2f} |", flush=True)


if __name__ == "__main__":
    main()
