"""A ChimeraX command script (``chimerax.cxc``) that shows an analysis folder in one command.

``chimerax analysis/chimerax.cxc`` opens the consensus map, each PC's decoded maps as one
volume series (``open ... vseries true``, played back and forth), each PC's morphed
multi-model PDB as a trajectory (``open ... coordsets true``, played with ``coordset``),
colours the domains (a marker set ``domains.cmm`` of the GMM's Gaussians coloured by mask;
map surfaces take the colour of the nearest marker with ``color zone``; model residues
are coloured by the mask of their nearest Gaussian), and sets a threshold and a view.
ChimeraX runs a ``.cxc`` file from the file's own folder, so every path in it is
relative to the script (the analysis folder can be moved together with the consensus map).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_write_path

__all__ = ["write_analysis_cxc", "enclosing_level", "PALETTE"]

PALETTE = ["#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#999999"]
OTHER = "#d9d9d9"  # Gaussians in no mask


def enclosing_level(volume: np.ndarray, fraction: float = 0.9) -> float:
    """Threshold whose enclosed voxels hold ``fraction`` of the map's positive density."""
    v = np.sort(np.asarray(volume, dtype=np.float64).reshape(-1))[::-1]
    v = v[v > 0]
    if v.size == 0:
        return 0.0
    cum = np.cumsum(v)
    return float(v[min(np.searchsorted(cum, fraction * cum[-1]), v.size - 1)])


def write_analysis_cxc(out: str | os.PathLike, pcs, n_frames: int, neutral, origin_angstrom, masks: dict,
                       consensus_map: str | os.PathLike | None = None, atom_model=None) -> Path:
    """Write ``out/chimerax.cxc`` (and ``out/domains.cmm`` when there are masks) for analyze's outputs.

    Args:
        out: the analysis folder (``maps/pcP_frameNN.mrc``, ``models/pcP.pdb`` inside).
        pcs: the PCs with trajectories (1-based); n_frames: frames per trajectory.
        neutral: the neutral GMM (Gaussian centres for the domain markers).
        origin_angstrom: world origin (x, y, z) of the written maps.
        masks: mask name -> bool ``(N,)`` over the Gaussians (domain colours).
        consensus_map: the consensus map, opened first when given.
        atom_model: the morphed model's template (residues coloured by domain).
    """
    from ..io.mrc import read_map

    out = Path(out)
    lines = ["# ChimeraX command script written by gmmplat analyze: chimerax chimerax.cxc",
             "# paths are relative to this file (ChimeraX runs a .cxc from its own folder)",
             "close session", "set bgColor white", "lighting soft", "graphics silhouettes true"]
    model_id = 0
    maps_ids, model_ids = [], []
    if consensus_map is not None:
        model_id += 1
        level = enclosing_level(read_map(consensus_map).data)
        lines += ["# consensus map", f"open {_rel(consensus_map, out)}",
                  f"volume #{model_id} level {level:.6g} style mesh color #7f7f7f"]
    markers = _write_markers(out, neutral, origin_angstrom, masks) if masks else None
    for p in pcs:
        files = [out / "maps" / f"pc{p}_frame{j:02d}.mrc" for j in range(n_frames)]
        if not all(f.is_file() for f in files):
            continue
        model_id += 1
        maps_ids.append(model_id)
        level = enclosing_level(read_map(files[n_frames // 2]).data)
        lines += [f"# PC {p}: decoded maps along the trajectory, as one volume series",
                  "open " + " ".join(_rel(f, out) for f in files) + " vseries true",
                  f"volume #{model_id} level {level:.6g} style surface"]
        if p != pcs[0]:
            lines.append(f"hide #{model_id} models")
    for p in pcs:
        pdb = out / "models" / f"pc{p}.pdb"
        if not pdb.is_file():
            continue
        model_id += 1
        model_ids.append(model_id)
        lines += [f"# PC {p}: the morphed model, as a trajectory", f"open {_rel(pdb, out)} coordsets true",
                  f"cartoon #{model_id}", f"hide #{model_id} atoms"]
        if p != pcs[0]:
            lines.append(f"hide #{model_id} models")
    if markers is not None:
        model_id += 1
        lines += ["# domains: one marker per Gaussian, coloured by mask (" +
                  ", ".join(f"{n} {c}" for n, c in zip(masks, PALETTE)) + f", other {OTHER})",
                  f"open {_rel(markers, out)}", f"hide #{model_id} models"]
        sigma = float(np.median(neutral.sigma_angstrom.detach().cpu().numpy()))
        for i in maps_ids:
            lines.append(f"color zone #{i} near #{model_id} distance {2.5 * sigma:.3g}")
        if atom_model is not None:
            spans = _residue_spans(atom_model, neutral, origin_angstrom, masks)
            for i in model_ids:
                lines += [f"color #{i}{spec} {colour} target c" for spec, colour in spans]
    for i in maps_ids[:1]:
        lines.append(f"vseries play #{i} loop true direction oscillate")
    for i in model_ids[:1]:
        lines.append(f"coordset #{i} 1,{n_frames} loop 1000 bounce true")
    lines += ["view", ""]
    path = out / "chimerax.cxc"
    with atomic_write_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines))
    return path


def _rel(path, out: Path) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(out)).replace(os.sep, "/")
    return f'"{rel}"' if any(c.isspace() for c in rel) else rel


def _centres(neutral, origin_angstrom) -> np.ndarray:
    """World positions (Å) of the Gaussians in the frame of the written maps."""
    xyz = neutral.xyz_angstrom.detach().cpu().numpy().astype(np.float64)
    return xyz + np.asarray(origin_angstrom, dtype=np.float64) + (int(neutral.box) // 2) * neutral.pixel_size_angstrom


def _domain_of(masks: dict, n: int) -> np.ndarray:
    """Index into the palette per Gaussian (first mask that holds it), -1 for none."""
    label = np.full(n, -1)
    for k, mask in reversed(list(enumerate(masks.values()))):
        label[np.asarray(mask, dtype=bool)] = k
    return label


def _write_markers(out: Path, neutral, origin_angstrom, masks: dict) -> Path:
    centres = _centres(neutral, origin_angstrom)
    label = _domain_of(masks, len(centres))
    sigma = neutral.sigma_angstrom.detach().cpu().numpy()
    rows = ['<marker_set name="gmm domains">']
    for i, (c, k, s) in enumerate(zip(centres, label, sigma)):
        rgb = _rgb(PALETTE[k % len(PALETTE)] if k >= 0 else OTHER)
        rows.append(f'<marker id="{i + 1}" x="{c[0]:.3f}" y="{c[1]:.3f}" z="{c[2]:.3f}" '
                    f'r="{rgb[0]:.3f}" g="{rgb[1]:.3f}" b="{rgb[2]:.3f}" radius="{float(s):.3f}"/>')
    rows.append("</marker_set>\n")
    path = out / "domains.cmm"
    with atomic_write_path(path) as tmp:
        Path(tmp).write_text("\n".join(rows))
    return path


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    return tuple(int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))


def _residue_spans(atom_model, neutral, origin_angstrom, masks: dict) -> list[tuple[str, str]]:
    """``[(atom spec "/A:10-52", colour)]``: runs of residues whose atoms' nearest Gaussians are in one mask."""
    from scipy.spatial import cKDTree

    centres = _centres(neutral, origin_angstrom)
    label = _domain_of(masks, len(centres))
    nearest = cKDTree(centres).query(np.asarray(atom_model.xyz_angstrom, dtype=np.float64))[1]
    atom_label = label[nearest]
    spans: list[tuple[str, str]] = []
    chains, resnums = np.asarray(atom_model.chain_id).astype(str), np.asarray(atom_model.residue_number)
    keys = list(dict.fromkeys(zip(chains.tolist(), resnums.tolist())))  # residues in file order
    per_res = {}
    for key, lab in zip(zip(chains.tolist(), resnums.tolist()), atom_label.tolist()):
        per_res.setdefault(key, []).append(lab)
    run = None
    for chain, res in keys + [(None, None)]:
        lab = None if chain is None else int(np.bincount(np.asarray(per_res[(chain, res)]) + 1).argmax()) - 1
        if run is not None and (chain != run[0] or lab != run[3]):
            colour = PALETTE[run[3] % len(PALETTE)] if run[3] >= 0 else OTHER
            spans.append((f"/{run[0]}:{run[1]}-{run[2]}", colour))
            run = None
        if chain is None:
            break
        run = [chain, res, res, lab] if run is None else [run[0], run[1], res, lab]
    return spans
