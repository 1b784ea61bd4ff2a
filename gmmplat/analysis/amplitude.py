"""Size and direction of a decoded motion against the true one, per atom and per residue.

Inputs are frames of the same atoms (Cα, usually): the decoded (morphed) model at each
truth frame's mean latent point, ``decoded (F, n, 3)``, and the true frames ``true (F, n, 3)``,
both in the same frame of reference (world Å), with ``reference`` the index of the truth
frame at ``t = 0`` (the neutral conformation).

* **amplitude ratio**: the decoded displacement of each atom along the true motion divided
  by the true displacement, ``((M_f − M_0) · (X_f − X_0)) / |X_f − X_0|²``, with ``M_0``
  and ``X_0`` the decoded and true reference frames; the median over the atoms and frames
  where the atom moves (``|X_f − X_0|`` at least ``min_fraction`` of that frame's largest
  true displacement).  1 for a decoded motion of the right size, 0.5 for half of it,
  0 for none; a motion in a wrong direction lowers it as well (only its component along
  the truth counts).
* **per-residue RMSD**: ``sqrt(mean_f |M_f − X_f|²)`` per atom, beside the unmorphed
  model's; with the per-atom amplitude ratio it separates a motion that is too small
  (ratio < 1) from one that goes the wrong way (ratio near 1 but RMSD high).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd

from ..errors import ConfigError

MIN_FRACTION = 0.2


def _check(decoded: np.ndarray, true: np.ndarray, reference: int) -> tuple[np.ndarray, np.ndarray]:
    m, x = np.asarray(decoded, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if m.shape != x.shape or m.ndim != 3 or m.shape[-1] != 3:
        raise ConfigError(f"decoded frames {m.shape} and true frames {x.shape} must both be (F, n, 3)")
    if not 0 <= reference < len(x):
        raise ConfigError(f"reference frame {reference} is outside 0..{len(x) - 1}")
    return m, x


def displacement_ratios(decoded: np.ndarray, true: np.ndarray, reference: int,
                        min_fraction: float = MIN_FRACTION) -> np.ndarray:
    """Per frame and atom ``(F, n)``: the decoded displacement along the true one ÷ the true one.

    NaN where the atom does not move in that frame (true displacement below ``min_fraction``
    of the frame's largest, or zero) and for the reference frame itself.
    """
    m, x = _check(decoded, true, reference)
    dm, dx = m - m[reference], x - x[reference]
    size2 = np.sum(dx * dx, axis=-1)  # (F, n)
    largest = np.sqrt(size2.max(axis=1, keepdims=True))
    moving = (np.sqrt(size2) >= min_fraction * largest) & (size2 > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.sum(dm * dx, axis=-1) / size2
    return np.where(moving, ratio, np.nan)


def amplitude_ratio(decoded: np.ndarray, true: np.ndarray, reference: int, mask: np.ndarray | None = None,
                    min_fraction: float = MIN_FRACTION) -> float:
    """Median of :func:`displacement_ratios` over moving atoms (of ``mask``, ``(n,)`` bool) and frames.

    NaN when no atom moves.
    """
    r = displacement_ratios(decoded, true, reference, min_fraction)
    if mask is not None:
        r = r[:, np.asarray(mask, dtype=bool)]
    r = r[np.isfinite(r)]
    return float(np.median(r)) if r.size else float("nan")


def per_atom_rmsd(decoded: np.ndarray, true: np.ndarray) -> np.ndarray:
    """``sqrt(mean_f |decoded_f − true_f|²)`` per atom ``(n,)`` (Å); ``decoded`` may be one ``(n, 3)`` model."""
    m, x = np.asarray(decoded, dtype=np.float64), np.asarray(true, dtype=np.float64)
    m = np.broadcast_to(m, x.shape)
    return np.sqrt(np.mean(np.sum((m - x) ** 2, axis=-1), axis=0))


def per_residue_table(model, decoded: np.ndarray, true: np.ndarray, neutral: np.ndarray, reference: int,
                      min_fraction: float = MIN_FRACTION) -> pd.DataFrame:
    """One row per atom of ``model`` (a Cα :class:`~gmmplat.io.models.AtomModel`: one per residue).

    Columns: chain_id, residue_number, residue_name, rmsd_angstrom (decoded vs true, over frames),
    neutral_rmsd_angstrom (the unmorphed model ``neutral (n, 3)`` vs true), true_motion_angstrom
    (largest true displacement from the reference frame), amplitude_ratio (median over frames, NaN
    where the atom does not move).
    """
    ratios = displacement_ratios(decoded, true, reference, min_fraction)
    x = np.asarray(true, dtype=np.float64)
    with warnings.catch_warnings():  # all-NaN columns (atoms that never move) give NaN quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(ratios, axis=0)
    return pd.DataFrame({
        "chain_id": model.chain_id, "residue_number": model.residue_number, "residue_name": model.residue_name,
        "rmsd_angstrom": per_atom_rmsd(decoded, x),
        "neutral_rmsd_angstrom": per_atom_rmsd(neutral, x),
        "true_motion_angstrom": np.linalg.norm(x - x[reference], axis=-1).max(axis=0),
        "amplitude_ratio": med,
    })


def per_residue_png(path: str | os.PathLike, table: pd.DataFrame, title: str = "") -> None:
    """Per-residue RMSD (decoded and neutral) and amplitude ratio against residue position, as a PNG."""
    from .plots import _figure, _save

    fig, (ax,) = _figure(1, width=9.0, height=4.0)
    pos = np.arange(len(table))
    ax.plot(pos, table["neutral_rmsd_angstrom"], color="0.6", lw=1, label="neutral model")
    ax.plot(pos, table["rmsd_angstrom"], color="C0", lw=1.2, label="decoded (morphed)")
    ax.set_xlabel("residue (model order; chain boundaries dotted)")
    ax.set_ylabel("Cα RMSD to the true frames (Å)")
    for k in np.nonzero(table["chain_id"].to_numpy()[1:] != table["chain_id"].to_numpy()[:-1])[0]:
        ax.axvline(k + 0.5, color="0.8", ls=":")
    twin = ax.twinx()
    twin.plot(pos, table["amplitude_ratio"], color="C3", lw=1, label="amplitude ratio")
    twin.axhline(1.0, color="C3", ls="--", lw=0.6)
    twin.set_ylabel("amplitude ratio (decoded / true)", color="C3")
    twin.set_ylim(-0.2, 1.6)
    lines = ax.get_legend_handles_labels(), twin.get_legend_handles_labels()
    ax.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="upper left", fontsize=8)
    ax.set_title(title)
    _save(fig, path)


def mask_vectors(model, masks_json: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{name: (n,) bool}`` over the atoms of ``model`` for each entry of a dataset's ``masks.json``."""
    import json

    from ..io.models import select_atoms

    out = {}
    for name, entry in json.loads(open(masks_json).read()).get("masks", {}).items():
        try:
            sub = select_atoms(model, residues=entry["selection"])
        except Exception:  # a mask with no atom of this model (e.g. no Cα) is not reported
            continue
        out[name] = np.isin(model.atom_index, sub.atom_index)
    return out


def motion_scores(decoded: np.ndarray, true: np.ndarray, neutral: np.ndarray, reference: int, model=None,
                  masks: dict[str, np.ndarray] | None = None) -> tuple[dict, pd.DataFrame | None]:
    """Amplitude ratios (all atoms, and per mask) and, with ``model``, the per-residue table.

    ``decoded``, ``true``: ``(F, n, 3)`` for the frames present (``reference`` indexes into them);
    ``neutral``: ``(n, 3)``.  Returns ``({"amplitude_ratio": ..., "amplitude_ratio_<mask>": ...}, table)``.
    """
    scores = {"amplitude_ratio": amplitude_ratio(decoded, true, reference)}
    for name, mask in (masks or {}).items():
        if mask.any():
            scores[f"amplitude_ratio_{name}"] = amplitude_ratio(decoded, true, reference, mask)
    table = None if model is None else per_residue_table(model, decoded, true, neutral, reference)
    return scores, table


def truth_motion_scores(morphed: np.ndarray, present: np.ndarray, true_ca: np.ndarray, ca, masks_json) -> dict:
    """Amplitude ratios and per-residue records (:mod:`gmmplat.analysis.amplitude`) of a run's frames.

    ``morphed (P, n, 3)``: the model at the mean latent point of truth frames ``present (P,)``;
    ``true_ca (F, n, 3)``; the reference is the frame with the smallest displacement from the
    neutral model (``t = 0``); masks from ``masks_json`` when it exists.
    """
    rest = np.sqrt(np.mean(np.sum((true_ca - ca.xyz_angstrom[None]) ** 2, -1), -1))
    reference = int(np.argmin(rest))
    if reference not in set(present.tolist()):
        return {}
    masks = mask_vectors(ca, masks_json) if os.path.isfile(masks_json) else {}
    out, residues = motion_scores(morphed, true_ca[present], ca.xyz_angstrom, list(present).index(reference), ca,
                                  masks)
    out["per_residue"] = residues.to_dict(orient="records")
    return out
