"""The exact-likelihood oracle: the best a latent space can do on a simulated dataset.

For each particle of a simulated dataset (``gmmplat simulate``) the oracle knows what the
simulation knew, except the particle's conformation: the true frames (``truth_frames.pdb``,
``F`` conformations at ``t`` evenly spaced on [-1, 1]), the particle's pose, shift and CTF
(``particles.star``), the atoms' Gaussian width and amplitudes (electrons per element) and
the noise σ (``metadata.json``).  It forms each frame's noise-free image with the simulator's
own function (:func:`gmmplat.synthetic.images.render_particles`), and with white Gaussian noise of σ

    log p(y | k) = −|y − x_k|² / (2σ²) − (M²/2) log(2πσ²)          (M² pixels)

The prior over frames is the simulation's (``t`` uniform on [-1, 1]): frame ``k`` gets the
share of [-1, 1] nearest to it (the end frames half as much).  The posterior
``p(k | y) ∝ p(y | k) p(k)`` gives the posterior-mean ``t = Σ_k p(k | y) t_k`` (the oracle's
one-dimensional latent) and the MAP frame.  Its morph: for each truth frame ``f``, the
posterior-mean structure of the particles nearest ``f``, ``Σ_k p̄_fk X_k`` (and the same with
the MAP frames' one-hot vectors), against ``X_f`` on the Cα atoms — the counterpart of a
run's model morphed at the mean latent point of frame ``f``'s particles
(:func:`gmmplat.analysis.evaluate.frame_rmsd`).  The particles' own ``t`` lies between the
frames, so the frames bound the oracle's resolution in ``t`` (0.2 for 11 frames).

On a dataset simulated with nuisances (:mod:`gmmplat.synthetic.nuisance`) the oracle also
knows each particle's true pose and origin, B-factor and scale (``truth.csv``) and the noise
spectrum ``S(k)`` (``metadata.json``): each frame's image carries the particle's envelope and
scale, and with coloured noise the likelihood is that of the whitened Fourier residual,

    log p(y | k) = −½ Σ_k |Y(k) − X_k(k)|² / (M² σ² S(k)) − ½ Σ_k log(2π σ² S(k))

(sums over the whole Fourier plane of the unnormalised DFT; ``S`` has mean 1, so white noise,
``S = 1``, gives the real-space formula above).  Junk particles have no conformation: the
oracle leaves them out of its subset and its scores, and reports their number.

The oracle works on a stated subset of the particles (``n_particles``, a seeded random
choice among the particles that are not junk).  :mod:`gmmplat.analysis.oracle_report` puts runs beside it.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError, InputError
from .amplitude import amplitude_ratio


@dataclass
class SimulatedDataset:
    """What the oracle reads of a ``gmmplat simulate`` folder.

    Attributes:
        path: the folder; metadata: ``metadata.json``; table: the STAR particle table.
        truth: ``truth.csv`` (particle_index, t, frame).
        frames_box: ``(F, n_atoms, 3)`` true frames, Å from the box centre; frame_t: ``(F,)``.
        amplitudes: ``(n_atoms,)`` electrons; ca_index: ``(n_ca,)`` rows of the Cα atoms.
        neutral_ca_box: ``(n_ca,)`` the neutral model's Cα, box frame.
        box, pixel_size_angstrom, sigma_angstrom, noise_std, invert_contrast: the simulation's.
    """

    path: Path
    metadata: dict
    table: pd.DataFrame
    star: object
    truth: pd.DataFrame
    frames_box: np.ndarray
    frame_t: np.ndarray
    amplitudes: np.ndarray
    ca_model: object
    neutral_ca_box: np.ndarray
    box: int
    pixel_size_angstrom: float
    sigma_angstrom: float
    noise_std: float
    invert_contrast: bool
    noise_power_at_nyquist: float = 1.0

    @property
    def junk(self) -> np.ndarray:
        """``(n,)`` bool: the particles simulated as junk (all False without a ``junk`` column)."""
        from .runs import junk_flags

        return junk_flags(self.truth)

    @property
    def frames_ca(self) -> np.ndarray:
        """``(F, n_ca, 3)`` true Cα per frame, box frame."""
        return self.frames_box[:, self.ca_model.atom_index]

    @property
    def reference_frame(self) -> int:
        """Index of the frame at ``t = 0`` (the nearest one)."""
        return int(np.argmin(np.abs(self.frame_t)))


def dataset_star(path: str | os.PathLike):
    """The particles (ParticleStar) of a ``gmmplat simulate`` folder, as :func:`load_simulated_dataset` reads them."""
    from ..io.star import read_particle_star

    path = Path(path)
    meta_path = path / "metadata.json"
    if not meta_path.is_file():
        raise InputError(meta_path, "not found: the oracle needs a complete simulated dataset (gmmplat simulate)")
    try:
        files = json.loads(meta_path.read_text()).get("files", {})
    except (ValueError, AttributeError) as exc:
        raise InputError(meta_path, f"not a gmmplat simulate metadata file ({type(exc).__name__}: {exc})") from None
    return read_particle_star(path / files.get("star", "particles.star"))


def load_simulated_dataset(path: str | os.PathLike) -> SimulatedDataset:
    """Read a ``gmmplat simulate`` folder; one-line :class:`InputError` for a missing or unusable piece."""
    from ..io.models import read_model
    from ..io.star import read_particle_star
    from ..synthetic.model import ELECTRONS
    from .evaluate import load_truth, read_model_frames

    path = Path(path)
    meta_path = path / "metadata.json"
    if not meta_path.is_file():
        raise InputError(meta_path, "not found: the oracle needs a complete simulated dataset (gmmplat simulate)")
    try:
        meta = json.loads(meta_path.read_text())
        opts = meta["options"]
        noise_std = float(meta["noise_std"])
        centre = np.asarray(meta["box_centre_world_angstrom"], dtype=np.float64)
        frame_t = np.asarray(meta["truth"]["frame_t"], dtype=np.float64)
        box, apix, sigma = int(opts["box"]), float(opts["pixel_size_angstrom"]), float(opts["sigma_angstrom"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(meta_path, f"not a gmmplat simulate metadata file ({type(exc).__name__}: {exc})") from None
    if not noise_std > 0:
        raise InputError(meta_path, "noise-free dataset (noise_std 0): the likelihood is degenerate without noise")
    files = meta.get("files", {})
    star = read_particle_star(path / files.get("star", "particles.star"))
    truth = load_truth(path / files.get("truth", "truth.csv"))
    if len(truth) != len(star.table):
        raise InputError(path / "truth.csv", f"{len(truth)} rows but the STAR file has {len(star.table)} particles")
    frames_path = path / files.get("frames", "truth_frames.pdb")
    frames = read_model_frames(frames_path)
    model_path = path / files.get("model", "neutral_model.pdb")
    atoms = read_model(model_path)
    if frames.shape[0] != len(frame_t) or frames.shape[1] != len(atoms):
        raise InputError(frames_path, f"holds {frames.shape[0]} models of {frames.shape[1]} atoms; expected "
                                      f"{len(frame_t)} of {len(atoms)} ({model_path.name}, metadata.json)")
    unknown = sorted(set(atoms.element.tolist()) - set(ELECTRONS))
    if unknown:
        raise InputError(model_path, f"elements without a simulated amplitude: {', '.join(unknown)}")
    ca = read_model(model_path, selection="ca")
    return SimulatedDataset(
        path=path, metadata=meta, table=star.table, star=star, truth=truth, frames_box=frames - centre,
        frame_t=frame_t, amplitudes=np.array([ELECTRONS[e] for e in atoms.element], dtype=np.float64),
        ca_model=ca, neutral_ca_box=ca.xyz_angstrom - centre, box=box, pixel_size_angstrom=apix,
        sigma_angstrom=sigma, noise_std=noise_std, invert_contrast=bool(opts.get("invert_contrast", False)),
        noise_power_at_nyquist=float((opts.get("nuisances") or {}).get("noise_power_at_nyquist", 1.0)),
    )


def frame_prior(frame_t: np.ndarray) -> np.ndarray:
    """``(F,)`` share of ``t ~ U[-1, 1]`` nearest each frame (frames sorted by ``t``)."""
    t = np.asarray(frame_t, dtype=np.float64)
    edges = np.concatenate([[-1.0], (t[1:] + t[:-1]) / 2, [1.0]])
    w = np.clip(np.diff(np.clip(edges, -1.0, 1.0)), 0.0, None)
    return w / w.sum()


def frame_images(ds: SimulatedDataset, rows: np.ndarray, poses: tuple | None = None) -> torch.Tensor:
    """Noise-free images of particles ``rows`` ``(B,)`` under every true frame, float64 ``(B, F, M, M)``.

    True poses, origins, B-factors and scales from ``truth.csv`` where it holds them (datasets simulated
    with nuisances), else the STAR file's poses, no envelope and scale 1.  ``poses``: ``(A (B, 3, 3),
    origins (B, 2) Å)`` to use instead (the pose-marginal oracle's samples).
    """
    from ..physics.ctf import CTFParams, ctf_rfft
    from ..physics.geometry import euler_to_matrix
    from ..synthetic.images import render_particles
    from ..synthetic.simulate import TRUE_POSE_COLUMNS

    rows = np.asarray(rows, dtype=np.int64)
    tab = ds.table.iloc[rows]
    truth = ds.truth.iloc[rows]
    if all(c in truth.columns for c in TRUE_POSE_COLUMNS):
        tab = truth
    F, B, M = len(ds.frames_box), len(rows), ds.box
    A = euler_to_matrix(*(torch.tensor(tab[c].to_numpy(dtype=np.float64)) for c in
                          ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    shifts = tab[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy(dtype=np.float64)
    if poses is not None:
        A, shifts = (np.asarray(v, dtype=np.float64) for v in poses)
    xyz = np.broadcast_to(ds.frames_box[None], (B,) + ds.frames_box.shape).reshape(B * F, -1, 3)
    params = CTFParams.from_table(ds.table, rows)
    scale = torch.ones(B, dtype=torch.float64)
    if "bfactor_angstrom2" in truth.columns:
        params.bfactor = torch.tensor(truth["bfactor_angstrom2"].to_numpy(dtype=np.float64))
    if "scale" in truth.columns:
        scale = torch.tensor(truth["scale"].to_numpy(dtype=np.float64))
    ctf = ctf_rfft(params, M, ds.pixel_size_angstrom)
    img = render_particles(xyz, ds.amplitudes, np.repeat(A, F, axis=0), np.repeat(shifts, F, axis=0),
                           ctf.repeat_interleave(F, dim=0), M, ds.pixel_size_angstrom, ds.sigma_angstrom,
                           scale=scale.repeat_interleave(F), invert_contrast=ds.invert_contrast)
    return img.reshape(B, F, M, M)


def gaussian_log_likelihood(images: torch.Tensor, clean: torch.Tensor, noise_std: float,
                            spectrum: torch.Tensor | None = None) -> torch.Tensor:
    """``log p(y | k)`` for images ``(B, M, M)`` and noise-free candidates ``(B, F, M, M)`` -> ``(B, F)``.

    ``spectrum``: the noise's relative power ``S (M, M//2+1)`` on the rfft grid, mean 1 over the whole
    plane (:func:`gmmplat.synthetic.nuisance.noise_spectrum`); None for white noise.
    """
    y = torch.as_tensor(images, dtype=torch.float64)[:, None]
    n_pix = y.shape[-1] * y.shape[-2]
    if spectrum is None:
        r2 = ((y - clean) ** 2).sum(dim=(-2, -1))
        return -0.5 * r2 / noise_std**2 - 0.5 * n_pix * math.log(2 * math.pi * noise_std**2)
    M = y.shape[-1]
    w = torch.full((M // 2 + 1,), 2.0, dtype=torch.float64)  # each half-plane cell and its conjugate
    w[0] = 1.0
    if M % 2 == 0:
        w[-1] = 1.0
    S = spectrum.to(torch.float64)
    R = torch.fft.rfft2(y - clean)
    r2 = (R.real**2 + R.imag**2) / S * w
    logdet = float((torch.log(2 * math.pi * noise_std**2 * S) * w).sum())
    return -0.5 * r2.sum(dim=(-2, -1)) / (n_pix * noise_std**2) - 0.5 * logdet


@dataclass
class OracleResult:
    """The oracle on particles ``rows`` (STAR order): ``log_likelihood`` and ``posterior`` ``(n, F)``,
    ``t_mean`` (posterior mean), ``map_frame``, ``t_true`` and ``frame`` (truth) ``(n,)``."""

    rows: np.ndarray
    log_likelihood: np.ndarray
    posterior: np.ndarray
    t_mean: np.ndarray
    map_frame: np.ndarray
    t_true: np.ndarray
    frame: np.ndarray
    frame_t: np.ndarray


def choose_rows(n_total: int, n_particles: int | None, seed: int = 0, exclude: np.ndarray | None = None
                ) -> np.ndarray:
    """Sorted seeded random subset of ``n_particles`` rows (all when None, 0 or ≥ the rows left), leaving out
    the rows where ``exclude`` ``(n_total,)`` bool is True (junk)."""
    keep = np.arange(n_total) if exclude is None else np.flatnonzero(~np.asarray(exclude, dtype=bool))
    if n_particles is not None and n_particles < 0:
        raise ConfigError(f"oracle particle count must be positive, got {n_particles}")
    if not n_particles or n_particles >= len(keep):
        return keep
    pick = np.random.default_rng(np.random.SeedSequence([int(seed), 14])).choice(len(keep), int(n_particles),
                                                                                 replace=False)
    return np.sort(keep[pick])


def stated_pose_samples(ds: SimulatedDataset, rows: np.ndarray, n_samples: int, seed: int = 0):
    """``n_samples`` candidate true poses per particle from the stated ones and the simulated error sizes.

    The STAR pose is the true one turned by a rotation whose rotation vector is N(0, σ²) per axis and its
    origin the true one plus N(0, σ_δ²) per axis; both distributions are symmetric, so the true pose given
    the stated one is drawn the same way: ``exp([ω]×) A_stated``, ``origin_stated + e``.  Yields
    ``(A (B, 3, 3), origins (B, 2))`` per sample, drawn from a seeded stream of their own.
    """
    from ..physics.geometry import euler_to_matrix
    from ..synthetic.nuisance import rotvec_matrices

    nz = ds.metadata["options"].get("nuisances") or {}
    sig_w, sig_d = math.radians(float(nz.get("pose_error_deg", 0))), float(nz.get("shift_error_angstrom", 0))
    tab = ds.table.iloc[np.asarray(rows)]
    A = euler_to_matrix(*(torch.tensor(tab[c].to_numpy(dtype=np.float64)) for c in
                          ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    origin = tab[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy(dtype=np.float64)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 16, int(np.asarray(rows)[0])]))
    for _ in range(int(n_samples)):
        R = rotvec_matrices(sig_w * rng.standard_normal((len(A), 3)))
        yield R @ A, origin + sig_d * rng.standard_normal((len(A), 2))


def has_pose_errors(ds: SimulatedDataset) -> bool:
    nz = ds.metadata["options"].get("nuisances") or {}
    return bool(nz.get("pose_error_deg", 0) or nz.get("shift_error_angstrom", 0))


def run_oracle(ds: SimulatedDataset, n_particles: int | None = 1000, seed: int = 0, chunk: int = 16,
               progress: bool = False, pose_samples: int = 0) -> OracleResult:
    """Posterior over the true frames for a subset of the particles (see the module docstring).

    ``pose_samples`` > 0: the pose-marginal oracle, which is not told the true poses of a dataset simulated
    with pose errors: ``p(y | k) = mean_s p(y | k, pose_s)`` over that many poses drawn about the stated one
    (:func:`stated_pose_samples`; the same draws for every frame of a particle).
    """
    from tqdm.auto import tqdm

    from ..io.stacks import StackReader

    from ..synthetic.nuisance import noise_spectrum

    rows = choose_rows(len(ds.table), n_particles, seed, exclude=ds.junk)
    spectrum = None
    if ds.noise_power_at_nyquist != 1.0:
        spectrum = noise_spectrum(ds.box, ds.pixel_size_angstrom, ds.noise_power_at_nyquist)
    reader = StackReader(ds.star)
    ll = np.empty((len(rows), len(ds.frame_t)), dtype=np.float64)
    with tqdm(total=len(rows), desc="oracle", unit="particle", disable=not progress) as bar:
        for i in range(0, len(rows), chunk):
            sub = rows[i : i + chunk]
            images = torch.as_tensor(np.asarray(reader[sub], dtype=np.float64))
            if pose_samples:
                each = np.stack([gaussian_log_likelihood(images, frame_images(ds, sub, poses), ds.noise_std,
                                                         spectrum).numpy()
                                 for poses in stated_pose_samples(ds, sub, pose_samples, seed)])  # (S, B, F)
                top = each.max(0)
                ll[i : i + len(sub)] = top + np.log(np.exp(each - top).mean(0))
            else:
                ll[i : i + len(sub)] = gaussian_log_likelihood(images, frame_images(ds, sub), ds.noise_std,
                                                               spectrum).numpy()
            bar.update(len(sub))
    reader.close()
    log_post = ll + np.log(frame_prior(ds.frame_t))[None]
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    post /= post.sum(axis=1, keepdims=True)
    return OracleResult(rows=rows, log_likelihood=ll, posterior=post, t_mean=post @ ds.frame_t,
                        map_frame=post.argmax(axis=1), t_true=ds.truth["t"].to_numpy(dtype=np.float64)[rows],
                        frame=ds.truth["frame"].to_numpy(dtype=np.int64)[rows], frame_t=ds.frame_t)


def frame_weights(weights: np.ndarray, frame: np.ndarray, n_frames: int) -> tuple[list[int], np.ndarray]:
    """Mean weight vector ``(len(present), F)`` of each truth frame's particles; ``weights (n, F)``."""
    present = [f for f in range(n_frames) if np.any(frame == f)]
    return present, np.stack([weights[frame == f].mean(0) for f in present])


def oracle_scores(ds: SimulatedDataset, res: OracleResult, k: int = 10, seed: int = 0) -> dict:
    """The oracle's scores, keyed as :func:`gmmplat.analysis.runs.score_run`'s, plus its own.

    ``spearman_abs``, ``knn_r2`` (of the posterior-mean ``t``), ``mean_frame_rmsd_angstrom``
    (posterior-mean structures), ``mean_frame_rmsd_map_angstrom`` (MAP frames),
    ``mean_neutral_rmsd_angstrom``, ``map_frame_accuracy``, ``amplitude_ratio`` (of the
    posterior-mean structures), ``mean_posterior_entropy``, ``n_particles``, ``rows_seed``.
    """
    from .evaluate import evaluate_latent

    scores = evaluate_latent(res.t_mean[:, None], res.t_true, k=k, seed=seed)
    X = ds.frames_ca  # (F, n_ca, 3)
    F = len(X)
    out = {"spearman_abs": scores["spearman_abs"], "knn_r2": scores["knn_r2"],
           "neighbour_overlap": scores["neighbour_overlap"], "n_particles": int(len(res.rows)),
           "n_particles_total": int(len(ds.table)), "n_frames": F, "n_junk": int(ds.junk.sum())}
    onehot = np.eye(F)[res.map_frame]
    for key, w in (("", res.posterior), ("_map", onehot)):
        present, wbar = frame_weights(w, res.frame, F)
        morphed = np.einsum("pk,kac->pac", wbar, X)
        rmsd = np.sqrt(np.mean(np.sum((morphed - X[present]) ** 2, -1), -1))
        out[f"mean_frame_rmsd{key}_angstrom"] = float(rmsd.mean())
        if key == "":
            out["frame_rmsd"] = [{"frame": f, "rmsd_angstrom": float(r)} for f, r in zip(present, rmsd)]
            if ds.reference_frame in present and len(present) == F:
                out["amplitude_ratio"] = amplitude_ratio(morphed, X, ds.reference_frame)
    present = sorted(set(res.frame.tolist()))
    neutral = np.sqrt(np.mean(np.sum((ds.neutral_ca_box[None] - X[present]) ** 2, -1), -1))
    out["mean_neutral_rmsd_angstrom"] = float(neutral.mean())
    out["map_frame_accuracy"] = float(np.mean(res.map_frame == res.frame))
    p = np.clip(res.posterior, 1e-300, 1.0)
    out["mean_posterior_entropy"] = float(np.mean(-(res.posterior * np.log(p)).sum(1)))
    return out


def trivial_scores(t_true: np.ndarray, latent_dim: int = 4, k: int = 10, seed: int = 0) -> dict:
    """Scores of a random latent (standard normal, ``latent_dim``) for the same particles."""
    from .evaluate import evaluate_latent

    z = np.random.default_rng(np.random.SeedSequence([int(seed), 15])).standard_normal((len(t_true), latent_dim))
    s = evaluate_latent(z, t_true, k=k, seed=seed)
    return {"spearman_abs": s["spearman_abs"], "knn_r2": s["knn_r2"]}
