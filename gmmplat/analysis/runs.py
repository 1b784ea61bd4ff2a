"""Loading a finished run for analysis, with the checks the analysis commands share."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import InputError
from ..model.gmm import GMM
from ..records import read_latent
from .evaluate import check_rows
from .latent import flatten_latent
from ..plugins import import_plugins  # noqa: F401  (re-exported: analysis code in notebooks uses it)


@dataclass
class AnalysisRun:
    """A run ready for analysis.

    Attributes:
        run: the :class:`gmmplat.train.TrainedRun`.
        latent: ``(n, d)`` or ``(n, K, d)``; latent_path: where it was read.
        decode_fn: ``z (B, d) -> params (B, N, 5)`` (no gradients).
        neutral: the neutral GMM.
        star_path: the run's particle file, STAR or .cs (None when it no longer exists).
    """

    run: object
    latent: np.ndarray
    latent_path: Path
    decode_fn: Callable[[torch.Tensor], torch.Tensor]
    neutral: object
    star_path: Path | None

    @property
    def latent_dim(self) -> int:
        return int(self.latent.shape[-1])


def run_particles(ar: AnalysisRun, require_poses: bool = True, require_ctf: bool = True):
    """The run's particles (STAR or cryoSPARC .cs, with the reader options it was trained with)."""
    if ar.star_path is None:
        raise InputError(ar.run.config.data.star or None, "the run's particle file is not found")
    return ar.run.config.data.source().read(require_poses=require_poses, require_ctf=require_ctf)


def make_decode_fn(model: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model.decode`` on float32 input, without gradients."""

    def decode_fn(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.decode(torch.as_tensor(z, dtype=torch.float32))

    return decode_fn


def load_analysis_run(run_dir: str | os.PathLike, latent_path: str | os.PathLike | None = None,
                      check_star: bool = True) -> AnalysisRun:
    """Load ``RUN_DIR`` (``gmmplat.train.load_run``) and its latent (or ``latent_path``).

    Raises a one-line :class:`InputError` when the latent is missing or malformed, or when
    its row count disagrees with the run's STAR file (checked when ``check_star`` and
    the STAR file exists).
    """
    from ..train import load_run

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(run_dir, "run folder not found")
    run = load_run(run_dir)
    lpath = Path(latent_path) if latent_path is not None else run_dir / "latent.npy"
    latent = np.asarray(run.latent) if latent_path is None and run.latent is not None else read_latent(lpath)
    flatten_latent(latent, path=lpath)
    d_model = int(run.model.latent_dim)
    if latent.shape[-1] != d_model:
        raise InputError(lpath, f"latent has {latent.shape[-1]} dimensions but the run's model {d_model}")
    star = run.config.data.star
    star_path = Path(star) if star and Path(star).is_file() else None
    if check_star and star_path is not None:
        n = len(run.config.data.source().read(require_poses=False, require_ctf=False).table)
        check_rows(latent, n, lpath, star_path)
    return AnalysisRun(run, latent, lpath, make_decode_fn(run.model), run.neutral, star_path)


def domain_masks(model: torch.nn.Module, neutral: GMM) -> dict[str, np.ndarray]:
    """Masks to report rigid motions for: the ``domains`` the model's decoders declare
    (rigid-body decoders), else every mask of the neutral GMM."""
    masks = neutral.masks()
    named = [n for n in model.decoder.domains if n in masks]
    return {n: masks[n] for n in named} if named else masks


def find_runs(runs_dir: str | os.PathLike) -> list[Path]:
    """Run folders (holding ``model.pt``) directly under ``runs_dir``, sorted by name."""
    d = Path(runs_dir)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if (p / "model.pt").is_file())


def dataset_dir(ar: AnalysisRun) -> Path | None:
    """Folder of the run's STAR file (a sample dataset's folder: ``truth.csv`` etc. beside it)."""
    return None if ar.star_path is None else ar.star_path.parent


def junk_flags(truth) -> np.ndarray:
    """``(n,)`` bool: the rows of a truth table simulated as junk (none without a ``junk`` column)."""
    if "junk" not in truth.columns:
        return np.zeros(len(truth), dtype=bool)
    return truth["junk"].fillna(0).to_numpy().astype(bool)


def junk_separation(run_dir: Path, junk: np.ndarray) -> dict:
    """``n_junk_excluded`` and, when the run holds ``quality.npy``, ``junk_auc``: the ROC AUC of the
    quality score for telling particles (positives) from junk (1: every particle above every junk one)."""
    out = {"n_junk_excluded": int(junk.sum())}
    path = run_dir / "quality.npy"
    if junk.any() and (~junk).any() and path.is_file():
        from sklearn.metrics import roc_auc_score

        q = np.nan_to_num(np.load(path).astype(np.float64), nan=-1e30, neginf=-1e30, posinf=1e30)
        if q.shape == junk.shape:
            out["junk_auc"] = float(roc_auc_score(~junk, q))
    return out


def score_run(ar: AnalysisRun, truth_path, truth_frames_path=None, model_path=None, k: int = 10, seed: int = 0,
              s_angstrom: float | None = None, rows=None, morph_reference: str = "median") -> dict:
    """The ``gmmplat evaluate`` scores of a loaded run (see :mod:`gmmplat.analysis.evaluate`).

    With ``truth_frames_path`` and ``model_path`` (the truth frames' template, fitted in the
    consensus map) also the per-frame Cα RMSD of the morphed model (``frame_rmsd`` records,
    ``mean_frame_rmsd_angstrom``, ``mean_neutral_rmsd_angstrom``), the amplitude ratios and the
    per-residue records (:func:`gmmplat.analysis.amplitude.truth_motion_scores`).  ``rows``: score
    only these particles (0-based STAR rows), e.g. the oracle's subset.  ``morph_reference``:
    the morph carries the decoded motion from the latent median (``"median"``) or the offsets
    from the neutral GMM (``"neutral"``), see :mod:`gmmplat.analysis.morph_reference`.
    """
    from ..errors import ConfigError
    from ..io.models import read_model
    from .amplitude import truth_motion_scores
    from .evaluate import evaluate_latent, frame_rmsd, load_truth, particle_latent, read_model_frames
    from .morph_reference import run_morpher

    if (truth_frames_path is None) != (model_path is None):
        raise ConfigError("truth frames and the model they are frames of go together")
    truth = load_truth(truth_path)
    check_rows(ar.latent, len(truth), ar.latent_path, truth_path)
    latent = ar.latent
    junk = junk_flags(truth)
    junk_scores = junk_separation(Path(ar.run.run_dir), junk)
    if junk.any():  # junk has no conformation: left out of every score, reported beside them
        keep = np.flatnonzero(~junk) if rows is None else np.asarray(rows)[~junk[np.asarray(rows)]]
        rows = keep
    if rows is not None:
        latent, truth = particle_latent(latent)[rows], truth.iloc[rows].reset_index(drop=True)
    scores = evaluate_latent(latent, truth["t"].to_numpy(dtype=np.float64), k=k, seed=seed)
    scores.update(junk_scores)
    scores.update(run=str(Path(ar.run.run_dir).absolute()), latent=str(ar.latent_path.absolute()),
                  morph_reference=morph_reference,
                  truth=str(Path(truth_path).absolute()), symmetry_copy_scored=0 if ar.latent.ndim == 3 else None)
    if truth_frames_path is None:
        return scores
    if "frame" not in truth.columns:
        raise InputError(truth_path, "truth file needs a column 'frame' to compare with truth frames")
    ca = read_model(model_path, selection="ca")
    frames_all = read_model_frames(truth_frames_path)
    if frames_all.shape[1] != ca.n_atoms_total:
        raise InputError(truth_frames_path, f"models hold {frames_all.shape[1]} atoms but {model_path} "
                                            f"has {ca.n_atoms_total}: not frames of that model")
    frame = truth["frame"].to_numpy()
    if frame.min() < 0 or frame.max() >= len(frames_all):
        raise InputError(truth_path, f"frame indices run {frame.min()}..{frame.max()} but "
                                     f"{truth_frames_path} holds {len(frames_all)} models")
    morpher = run_morpher(ar, ca, morph_reference, s_angstrom=s_angstrom)
    morphed = {}

    def morph_fn(z):
        morphed["xyz"] = morpher.morph(ar.decode_fn, z)
        return morphed["xyz"]

    true_ca = frames_all[:, ca.atom_index]
    table = frame_rmsd(latent, frame, true_ca, morph_fn, ca.xyz_angstrom)
    scores["frame_rmsd"] = table.to_dict(orient="records")
    scores["mean_frame_rmsd_angstrom"] = float(table["rmsd_angstrom"].mean())
    scores["mean_neutral_rmsd_angstrom"] = float(table["neutral_rmsd_angstrom"].mean())
    scores.update(truth_motion_scores(morphed["xyz"], table["frame"].to_numpy(), true_ca, ca,
                                      Path(truth_path).parent / "masks.json"))
    return scores
