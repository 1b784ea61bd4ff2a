"""Local pose refinement: each particle's pose and origin corrected under its decoded GMM.

A consensus refinement states poses a few degrees and an ångström or so off (real data: a median
of 4–5° and 1 Å).  A conformation seen at a slightly wrong pose looks like another conformation,
so pose errors pass into the latent space and blur the decoders.  Given each particle's latent
point ``z_i`` and the decoded GMM ``G(z_i)``, this module finds the small rotation ``ω_i`` (a
rotation vector, applied on the left of the stated matrix: ``A' = exp([ω]×) A``) and origin
correction ``δ_i`` (Å) that maximise

    log p(y_i | G(z_i), A'_i, origin_i + δ_i) − |ω_i|² / (2 σ_ω²) − |δ_i|² / (2 σ_δ²)

on a band, with the Gaussian likelihood of the latent refinement (:mod:`gmmplat.refine.latent`:
the least-squares scale per image, the noise power per ring ``σ²_r``, so coloured noise is
whitened) and a Gaussian prior of ``σ_ω`` (degrees) and ``σ_δ`` (Å) around the stated pose, which
keeps the corrections of junk and of nearly empty images small.  Each particle's objective is
its own; a batch is optimised together with Adam for ``steps`` steps (cosine-decayed step size),
from the corrections found so far.

:class:`PoseCorrections` holds the corrections of every dataset item; a
:class:`gmmplat.io.dataset.ParticleDataset` applies them to the batches it makes
(:meth:`~gmmplat.io.dataset.ParticleDataset.set_pose_corrections`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..losses.base import RingSums
from ..physics.fourier import Band
from ..physics.geometry import axis_angle_to_matrix
from ..physics.image_model import ImageModel
from .latent import ring_residuals

__all__ = ["PoseCorrections", "refine_poses", "shrink_estimates", "noise_on_band"]


@dataclass
class PoseCorrections:
    """Per dataset item: ``rotvec_rad (n, 3)`` and ``shift_angstrom (n, 2)`` (float64 numpy).

    ``spread`` ``(5,)``: the standard deviation per component (rotation vector in radians ×3, origin in
    Å ×2) of the pose errors' distribution the shrinkage estimated (``√diag Σ``,
    :func:`shrink_estimates`); None when not estimated.  Near 0 on exact poses.
    """

    rotvec_rad: np.ndarray
    shift_angstrom: np.ndarray
    spread: np.ndarray | None = None

    def spread_deg_angstrom(self) -> tuple[float, float]:
        """``(rotation spread per axis in degrees, origin spread per axis in Å)``; ``(0, 0)`` when unknown."""
        if self.spread is None:
            return 0.0, 0.0
        v = np.asarray(self.spread, np.float64) ** 2
        return math.degrees(math.sqrt(v[:3].mean())), math.sqrt(v[3:].mean())

    @classmethod
    def zeros(cls, n: int) -> "PoseCorrections":
        return cls(np.zeros((n, 3)), np.zeros((n, 2)))

    def matrices(self, items=None) -> torch.Tensor:
        """``(B, 3, 3)`` float64 rotations ``exp([ω]×)`` of ``items`` (all when None)."""
        w = self.rotvec_rad if items is None else self.rotvec_rad[np.asarray(items)]
        return axis_angle_to_matrix(torch.as_tensor(w, dtype=torch.float64))

    def summary(self) -> dict:
        angle = np.degrees(np.linalg.norm(self.rotvec_rad, axis=1))
        shift = np.linalg.norm(self.shift_angstrom, axis=1)
        spread_deg, spread_angstrom = self.spread_deg_angstrom()
        return {"median_rotation_deg": float(np.median(angle)), "p90_rotation_deg": float(np.percentile(angle, 90)),
                "median_shift_angstrom": float(np.median(shift)),
                "p90_shift_angstrom": float(np.percentile(shift, 90)),
                "spread_deg": spread_deg, "spread_angstrom": spread_angstrom}

    def as_array(self) -> np.ndarray:
        """``(n, 5)``: rotation vector in degrees (3), origin correction in Å (2)."""
        return np.concatenate([np.degrees(self.rotvec_rad), self.shift_angstrom], 1).astype(np.float32)


def refine_poses(decode, dataset, z: np.ndarray, noise_per_ring: np.ndarray, band: Band, *,
                 start: PoseCorrections | None = None, projector: str = "separable", steps: int = 30,
                 rotation_sigma_deg: float = 20.0, shift_sigma_angstrom: float = 5.0, shrink: bool = True,
                 batch_size: int = 128, device="cpu", progress: bool = False) -> PoseCorrections:
    """Corrections of every item's pose (see the module docstring), starting from ``start``.

    ``decode``: latent ``(B, d)`` -> GMM ``(B, N, 5)``; ``z``: ``(n_items, d)``; ``noise_per_ring``: the
    latent refinement's noise power per ring of ``band`` (:class:`gmmplat.refine.latent.Refinement`).
    The dataset must not apply corrections of its own while this runs (they are passed as ``start``).
    ``shrink``: replace each estimate by its posterior mean under the error distribution estimated from
    all of them (:func:`shrink_estimates`); off, the estimates under the fixed prior are returned.
    """
    from tqdm.auto import tqdm

    from ..projectors import PROJECTORS

    n = len(dataset)
    start = start or PoseCorrections.zeros(n)
    x_all = np.concatenate([start.rotvec_rad, start.shift_angstrom], 1)  # (n, 5)
    hess = np.zeros((n, 5, 5))
    device = torch.device(device)
    image_model = ImageModel(band, PROJECTORS.build(projector, band)).to(device)
    rings = RingSums(band).to(device)
    noise = torch.as_tensor(noise_per_ring, dtype=torch.float32, device=device)
    if noise.shape[0] != rings.n_rings:
        raise ValueError(f"noise_per_ring has {noise.shape[0]} rings but the band has {rings.n_rings}")
    prior_var = torch.tensor([math.radians(rotation_sigma_deg) ** 2] * 3 + [float(shift_sigma_angstrom) ** 2],
                             dtype=torch.float64, device=device)[[0, 1, 2, 3, 3]]
    with tqdm(total=n, desc="refine poses", unit="particle", disable=not progress) as bar:
        for i in range(0, n, batch_size):
            chunk = np.arange(i, min(i + batch_size, n))
            batch = dataset.get_batch(chunk).to(device)
            with torch.no_grad():
                params = decode(torch.as_tensor(z[chunk], dtype=torch.float32, device=device)).to(device)
                O = image_model.observe(batch)
                C = image_model.ctf(batch.ctf, device)
            A = batch.rotations.to(torch.float64)
            s0 = batch.shifts_angstrom.to(torch.float64)

            def nll(x):  # (B, 5) -> (B,) data term at corrections x
                moved = replace(batch, rotations=(axis_angle_to_matrix(x[:, :3]) @ A).float(),
                                shifts_angstrom=(s0 + x[:, 3:]).float())
                # least-squares scale per image, as the refinement's likelihood (its gradient through the
                # scale vanishes at the optimum scale)
                residual = ring_residuals(O, image_model.predict(params, moved, ctf=C), rings)
                return (residual / (2.0 * noise)).sum(-1).double()

            # x = u · unit: Adam moves each u by about its step size (1 to start), so x by 0.5° and 0.2 Å
            unit = torch.tensor([math.radians(0.5)] * 3 + [0.2, 0.2], dtype=torch.float64, device=device)
            u = (torch.as_tensor(x_all[chunk], dtype=torch.float64, device=device) / unit).requires_grad_(True)
            opt = torch.optim.Adam([u], lr=1.0)
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
            with torch.enable_grad():  # callers may run under no_grad (the trainer's last step)
                for _ in range(steps):
                    x = u * unit
                    loss = (nll(x) + (x * x / (2 * prior_var)).sum(-1)).sum()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    sched.step()
                x = (u * unit).detach()
                hess[chunk] = _hessian(nll, x, unit.cpu().numpy()) if shrink else 0.0
            x_all[chunk] = x.cpu().numpy()
            bar.update(len(chunk))
    spread = None
    if shrink:
        x_all, _, errors = shrink_estimates(x_all, hess, return_covariance=True)
        spread = np.sqrt(np.maximum(np.diagonal(errors), 0.0))
    return PoseCorrections(x_all[:, :3].copy(), x_all[:, 3:].copy(), spread)


@torch.no_grad()
def noise_on_band(decode, dataset, z: np.ndarray, band: Band, *, projector: str = "separable",
                  particles: int = 1000, seed: int = 0, batch_size: int = 128, device="cpu") -> np.ndarray:
    """``(R,)`` noise power per ring of ``band``: the mean residual per whole-plane cell of each item's
    image under its decoded GMM at ``z``, at the pose the dataset gives (its corrections applied),
    over a seeded subset of at most ``particles`` items (as
    :func:`gmmplat.refine.latent.noise_per_ring` at the best anchor)."""
    from .latent import noise_per_ring
    from ..projectors import PROJECTORS

    n = len(dataset)
    subset = np.sort(np.random.default_rng(seed).choice(n, size=min(n, int(particles)), replace=False))
    device = torch.device(device)
    image_model = ImageModel(band, PROJECTORS.build(projector, band)).to(device)
    rings = RingSums(band).to(device)
    sums = []
    for i in range(0, len(subset), batch_size):
        chunk = subset[i:i + batch_size]
        batch = dataset.get_batch(chunk).to(device)
        params = decode(torch.as_tensor(z[chunk], dtype=torch.float32, device=device)).to(device)
        sums.append(ring_residuals(image_model.observe(batch), image_model.predict(params, batch), rings).cpu().numpy())
    return noise_per_ring(np.concatenate(sums)[:, None, :].astype(np.float64), rings)


def _hessian(nll, x: torch.Tensor, step: np.ndarray) -> np.ndarray:
    """``(B, 5, 5)`` Hessians of each item's data term by central differences of its gradient."""
    B = x.shape[0]
    H = np.zeros((B, 5, 5))

    def grad(at):
        at = at.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(nll(at).sum(), at)
        return g.cpu().numpy()

    for j in range(5):
        e = torch.zeros_like(x)
        e[:, j] = float(step[j])
        H[:, :, j] = (grad(x + e) - grad(x - e)) / (2 * step[j])
    return 0.5 * (H + np.swapaxes(H, 1, 2))


def shrink_estimates(x: np.ndarray, hess: np.ndarray, iterations: int = 100, floor: float = 1e-10,
                     return_covariance: bool = False):
    """Posterior means ``(n, 5)`` of the corrections under an error distribution estimated from them.

    Model: each estimate ``x_i = e_i + n_i``, the true error ``e_i ~ N(m, Σ)`` and the estimation noise
    ``n_i ~ N(0, H_i⁻¹)`` (``H_i``: the data term's Hessian at ``x_i``, clipped to be positive definite).
    ``m`` and ``Σ`` maximise the likelihood of the estimates, ``x_i ~ N(m, Σ + H_i⁻¹)``, by EM: with the
    posterior of each error, ``P_i = (H_i + Σ⁻¹)⁻¹`` and ``μ_i = P_i (H_i x_i + Σ⁻¹ m)``, the update is
    ``m = mean μ_i``, ``Σ = mean [P_i + (μ_i − m)(μ_i − m)ᵀ]``.  An image that fixes its pose poorly
    (small ``H_i``) counts little.  Returns the ``μ_i``: on exact poses ``Σ`` goes to 0 and so do the
    corrections; on poses a few degrees off each keeps what its image supports.
    ``return_covariance``: ``(μ (n, 5), P (n, 5, 5), Σ (5, 5))``, the posterior covariances and the
    errors' estimated covariance beside the means.
    """
    x = np.asarray(x, np.float64)
    w, V = np.linalg.eigh(np.asarray(hess, np.float64))
    H = V @ (np.maximum(w, floor)[..., None] * np.swapaxes(V, 1, 2))
    Hx = np.einsum("nij,nj->ni", H, x)
    m, S = x.mean(0), np.cov(x, rowvar=False) + floor * np.eye(x.shape[1])
    for _ in range(int(iterations)):
        Sinv = np.linalg.inv(S)
        P = np.linalg.inv(H + Sinv[None])
        mu = np.einsum("nij,nj->ni", P, Hx + Sinv @ m)
        m = mu.mean(0)
        d = mu - m
        S = (P + d[:, :, None] * d[:, None, :]).mean(0) + floor * np.eye(x.shape[1])
    return (mu, P, S) if return_covariance else mu
