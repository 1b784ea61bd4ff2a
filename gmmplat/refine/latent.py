"""Latent refinement: each particle's latent point from the likelihood of its image under decoded states.

The encoder maps an image to ``z`` in one pass.  At low SNR that amortised guess scatters, short
of what the exact-likelihood oracle reaches (docs/benchmarks.md, "Latent refinement").  Refinement
asks the trained decoders directly which state explains each particle's image, in the way the oracle
asks the true frames:

1. **Anchors**: ``K`` k-means centres ``c_k (K, d)`` of the encoder's latent points; prior
   ``π_k`` = the share of particles nearest ``c_k``.
2. **Residuals**: the decoded GMM at every anchor, projected with the particle's pose, shift
   and CTF on a band (:meth:`gmmplat.physics.image_model.ImageModel.predict`), scaled by its
   least-squares factor ``s_ik``; per Fourier ring ``r``,
   ``ρ_ikr = Σ_{cells of r} w |O_i − s_ik P_ik|²`` with ``w`` counting each half-plane cell
   with its conjugate (2; 1 on the self-conjugate columns ``kx = 0`` and ``kx = M/2``), so the
   sums run over the whole Fourier plane.  The DC term is left out.
3. **Noise power per ring**: ``σ²_r = mean_i ρ_{i k̂_i r} / n_r`` at each particle's best anchor
   ``k̂_i``, over a seeded subset of at most ``noise_particles`` particles (``n_r``: cells of
   ring ``r`` in the whole plane).  White noise gives a flat ``σ²_r``; coloured noise its
   spectrum; the GMM's own error at the best anchor is included.
4. **Likelihood**: ``ℓ_ik = −Σ_r ρ_ikr / (2 σ²_r) / T``, the Gaussian log-likelihood of the
   image (Parseval: for white real-space noise of variance ``σ²`` per pixel, ``σ²_r = M² σ²``
   and ``ℓ`` is the real-space ``−Σ_pixels (y − s x)² / (2σ²)``), ``T`` = ``temperature``
   (1: the exact likelihood; larger: flatter, for decoders far from the truth).
5. **Posterior mean**: ``p_ik ∝ π_k exp ℓ_ik``, refined ``z_i = Σ_k p_ik c_k``.
6. **Quality** (:func:`fit_quality`): how much better the decoded GMM at the particle's most
   probable anchor explains its image than the noise model alone, as a log-likelihood ratio
   ``q_i = (Σ_r C_r/σ²_r)₊² / (2 Σ_r A_r/σ²_r)`` (nats; ``A_r = Σ w |P|²``, ``C_r = Σ w Re P·conj(O)``
   per ring, the scale fitted in the whitened metric), with the whitened scale ``Σ C/σ² / Σ A/σ²``
   beside it.  A junk image (empty ice, a fragment, another object) is explained little: a low ``q``.
   Beside them, the B-factor of the envelope at which that prediction fits best
   (:func:`gmmplat.refine.envelope.fit_bfactor`).
7. **Pose samples** (``pose_samples`` J > 1, optional): at each particle's ``M`` most probable anchors
   the likelihood is the mean over its pose and ``J − 1`` antithetic draws about it,
   ``ℓ_ik = log (1/J) Σ_j exp ℓ_ik(A_j)``, as the oracle told only the stated poses averages over
   their errors (the others keep ``ℓ_ik − log J``); it replaces step 4's ``ℓ`` in steps 5 and 6
   (docs/training.md, "Real data").

Cost: ``K`` projections per particle on the band (the defaults are the presets' 24 anchors and
10 Å; the time is in docs/performance.md, "Allocator").
Memory: the ring sums of the noise subset ``(noise_particles, K, rings)``, ``(n, K)`` float64
log-likelihoods and the float32 posterior.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import torch

from ..allocator import keep_freed_memory
from ..errors import ConfigError
from ..losses.base import RingSums
from ..physics.fourier import Band
from ..physics.image_model import ImageModel
from .envelope import fit_bfactor

__all__ = ["Refinement", "refine_latent", "anchor_points", "principal_subspace", "ring_residuals", "noise_per_ring",
           "log_likelihood", "posterior", "fit_quality", "junk_mask", "ring_terms", "pose_perturbations",
           "effective_pose_samples"]

DecodeFn = Callable[[torch.Tensor], torch.Tensor]

#: The defaults (and the presets' settings, docs/benchmarks.md "Latent refinement").
DEFAULT_ANCHORS = 24
DEFAULT_HIGH_RES_ANGSTROM = 10.0
#: share of the median fitted scale under which a particle counts as junk (``select --exclude-junk``,
#: the presets' ``refine.junk_scale``); docs/benchmarks.md, "Real data"
DEFAULT_JUNK_SCALE = 0.5
#: anchors per particle at which the pose samples are projected (docs/benchmarks.md, "Real data")
DEFAULT_POSE_ANCHORS = 8


@dataclass
class Refinement:
    """What :func:`refine_latent` found.

    Attributes:
        latent: ``(n, d)`` float32 refined latent points (posterior means).
        anchors: ``(K, d)``; prior: ``(K,)``; posterior: ``(n, K)`` float32.
        noise_per_ring: ``(R,)`` noise power per ring (whole-plane cells, unnormalised rfft);
        ring_frequency: ``(R,)`` the rings' radii in 1/Å.
        options: the settings used; seconds: wall time.
        quality, fitted_scale, fitted_bfactor: ``(n,)`` float32 of each item's most probable prediction
            (:func:`fit_quality`; :func:`gmmplat.refine.envelope.fit_bfactor`, Å², NaN where nothing fits).
    """

    latent: np.ndarray
    anchors: np.ndarray
    prior: np.ndarray
    posterior: np.ndarray
    noise_per_ring: np.ndarray
    ring_frequency: np.ndarray
    options: dict = field(default_factory=dict)
    seconds: float = 0.0
    quality: np.ndarray | None = None
    fitted_scale: np.ndarray | None = None
    fitted_bfactor: np.ndarray | None = None

    @property
    def variance_kept(self) -> float:
        """Total variance of the refined points ÷ that of the encoder's (``options["encoder_variance"]``).

        The posterior mean keeps the part of the latent's spread that the images, seen through the
        decoded states, account for: near 0 when the decoded states hardly differ (an untrained or
        barely trained decoder), and every particle then sits near the prior mean.
        """
        total = float(self.options.get("encoder_variance", 0.0))
        return float(np.var(self.latent.astype(np.float64), axis=0).sum() / total) if total > 0 else float("nan")

    def summary(self) -> dict:
        """JSON-ready record (``refine.json`` of a run): options, anchors, prior, noise, posterior statistics."""
        p = np.clip(self.posterior.astype(np.float64), 1e-300, 1.0)
        return {
            "options": self.options, "n_particles": int(len(self.latent)), "n_anchors": int(len(self.anchors)),
            "anchors": self.anchors.tolist(), "prior": self.prior.tolist(),
            "noise_per_ring": [{"frequency_per_angstrom": float(f), "power": float(v)}
                               for f, v in zip(self.ring_frequency, self.noise_per_ring)],
            "mean_posterior_entropy": float(np.mean(-(p * np.log(p)).sum(1))),
            "mean_max_posterior": float(self.posterior.max(1).mean()),
            "variance_kept": self.variance_kept,
            "seconds": round(float(self.seconds), 2),
            **({} if self.quality is None else {"quality_median": float(np.median(self.quality)),
                                                "fitted_scale_median": float(np.median(self.fitted_scale))}),
            **({} if self.fitted_bfactor is None or not np.isfinite(self.fitted_bfactor).any() else
               {"fitted_bfactor_median_angstrom2": float(np.nanmedian(self.fitted_bfactor))}),
        }


def anchor_points(z: np.ndarray, n_anchors: int, seed: int = 0, stretch: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(centres (K, d), prior (K,))``: k-means of ``z (n, d)``; ``K = min(n_anchors, n)``.

    ``stretch`` > 1 moves every centre away from the prior-weighted mean ``m`` of the centres (the
    mean of ``z``): ``m + stretch (c_k − m)``.  A k-means centre is the mean of its cluster, so the
    outermost centres sit inside the latent's ends, and a posterior mean (a weighted mean of the
    anchors) cannot leave their hull: without a stretch, particles of the end states gather on the
    outermost anchors (docs/training.md, "Refinement cycles").
    """
    from sklearn.cluster import KMeans

    z = np.asarray(z, dtype=np.float64)
    k = int(min(n_anchors, len(z)))
    if k < 2:
        raise ConfigError(f"latent refinement needs at least 2 anchors and 2 particles (anchors {n_anchors}, "
                          f"particles {len(z)})")
    km = KMeans(n_clusters=k, n_init=4, random_state=int(seed)).fit(z)
    counts = np.bincount(km.labels_, minlength=k).astype(np.float64)
    prior = np.maximum(counts, 0.5) / np.maximum(counts, 0.5).sum()
    centres = km.cluster_centers_
    if stretch != 1.0:
        mean = prior @ centres
        centres = mean + float(stretch) * (centres - mean)
    return centres, prior


def principal_subspace(z: np.ndarray, components: int | None = None) -> tuple[np.ndarray, int]:
    """``(z projected onto its leading principal components (n, d), number kept)``, in ``z``'s own axes.

    ``z − m`` is replaced by its projection ``(z − m) V Vᵀ`` onto the ``k`` leading principal axes
    ``V (d, k)`` (``m``: the mean), so the points keep their coordinates and scale and only lose the
    spread across the kept axes.  ``components`` None: the Kaiser rule, every axis whose variance is
    above the mean variance of the ``d`` axes (at least one); an integer: that many (``d``: unchanged).
    """
    z = np.asarray(z, dtype=np.float64)
    d = z.shape[1]
    mean = z.mean(0)
    var, vecs = np.linalg.eigh(np.cov(z - mean, rowvar=False).reshape(d, d))
    order = np.argsort(var)[::-1]
    var, vecs = var[order], vecs[:, order]
    if components is None:
        k = max(1, int(np.sum(var > var.mean())))
    else:
        if not 1 <= int(components) <= d:
            raise ConfigError(f"principal components: 1 to {d} (the latent dimension), got {components}")
        k = int(components)
    V = vecs[:, :k]
    return (mean + (z - mean) @ V @ V.T).astype(np.float32), k


def ring_terms(observed: torch.Tensor, predicted: torch.Tensor, rings: RingSums
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(residual, power, cross)``, each ``(B, R)``: ring sums over the whole plane of ``|O − s P|²``
    (``s`` the least-squares scale per image), of ``|P|²`` and of ``Re P·conj(O)``.

    ``observed``, ``predicted``: ``(B, Ky, Kx)`` complex on the band of ``rings``
    (:class:`gmmplat.losses.base.RingSums`: Hermitian cell weights, DC left out).
    """
    power = rings.ring_sums(predicted.real**2 + predicted.imag**2)
    cross = rings.ring_sums(torch.real(predicted.conj() * observed))
    s = cross.sum(-1) / power.sum(-1).clamp_min(1e-30)
    return rings.ring_sums((observed - s[:, None, None] * predicted).abs() ** 2), power, cross


def ring_residuals(observed: torch.Tensor, predicted: torch.Tensor, rings: RingSums) -> torch.Tensor:
    """``(B, R)`` ring sums over the whole plane of ``|O − s P|²``, ``s`` the least-squares scale per image
    (:func:`ring_terms`)."""
    return ring_terms(observed, predicted, rings)[0]


def noise_per_ring(ring_sums: np.ndarray, rings: RingSums) -> np.ndarray:
    """``(R,)`` mean ring residual per whole-plane cell at each particle's best anchor; ``ring_sums (n, K, R)``."""
    best = ring_sums.sum(-1).argmin(1)
    at_best = ring_sums[np.arange(len(best)), best]  # (n, R)
    cells = rings.ring_sums(torch.ones(1, *rings.cell_weight.shape, device=rings.cell_weight.device))[0]
    return np.maximum(at_best.mean(0) / cells.cpu().numpy().astype(np.float64), 1e-30)


def log_likelihood(ring_sums: np.ndarray, noise: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """``(..., K)`` Gaussian log-likelihood ``−Σ_r ρ_r / (2 σ²_r) / T`` of ring sums ``(..., K, R)``."""
    return -(np.asarray(ring_sums, np.float64) / (2.0 * noise)).sum(-1) / float(temperature)


def fit_quality(power: np.ndarray, cross: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log-likelihood gain q (n,), whitened scale (n,))`` of predictions over the noise model alone.

    ``power``, ``cross``: ``(n, R)`` ring sums ``Σ w |P|²`` and ``Σ w Re P·conj(O)`` of each particle's
    prediction; ``noise``: ``(R,)`` noise power per whole-plane cell (:func:`noise_per_ring`).  With
    ``a = Σ_r A_r/(2σ²_r)``, ``c = Σ_r C_r/(2σ²_r)`` the best scale is ``s = c/a`` and the Gaussian
    log-likelihood rises by ``c²/a`` over ``s = 0`` (``q = 0`` when ``s < 0``).
    """
    a = (np.asarray(power, np.float64) / (2.0 * noise)).sum(-1)
    c = (np.asarray(cross, np.float64) / (2.0 * noise)).sum(-1)
    a = np.maximum(a, 1e-300)
    return np.where(c > 0, c * c / a, 0.0), c / a


def junk_mask(scale: np.ndarray, share: float = DEFAULT_JUNK_SCALE) -> tuple[np.ndarray, float]:
    """``(junk (n,) bool, threshold)``: the particles fitted at under ``share`` of the median fitted scale.

    The whitened least-squares scale of a particle's best prediction is about the particle's own
    intensity (lognormal about 1 in real data, ±0.1–0.2) plus noise of ``1/√(2a)`` (``a``: the
    prediction's whitened power, about 0.1 of the scale at SNR 0.05, box 64): a particle rarely fits at
    under half the median; empty ice fits at 0 and a fragment of a fraction f of the molecule at about f.
    """
    s = np.asarray(scale, dtype=np.float64)
    if not 0 < share < 1:
        raise ConfigError(f"junk threshold: a share of the median between 0 and 1, got {share}")
    finite = np.isfinite(s)
    if not finite.any():
        raise ConfigError("junk threshold: no particle has a finite fitted scale")
    threshold = float(share * np.median(s[finite]))
    return ~(s >= threshold), threshold


def posterior(loglik: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """``(n, K)`` posterior over anchors from log-likelihoods ``(n, K)`` and the prior ``(K,)``."""
    L = loglik + np.log(prior)[None]
    L -= L.max(1, keepdims=True)
    p = np.exp(L)
    return p / p.sum(1, keepdims=True)


def refinement_band(box: int, pixel_size_angstrom: float, high_res_angstrom: float | None) -> Band:
    """The band of a refinement to ``high_res_angstrom`` (None, or finer than Nyquist: Nyquist)."""
    nyquist = 2.0 * float(pixel_size_angstrom)
    res = None if high_res_angstrom is None else max(float(high_res_angstrom), nyquist)
    return Band(int(box), float(pixel_size_angstrom), res)


def refine_latent(decode: DecodeFn, dataset, z: np.ndarray, *, n_anchors: int = DEFAULT_ANCHORS,
                  anchor_stretch: float = 1.0, temperature: float = 1.0,
                  high_res_angstrom: float | None = DEFAULT_HIGH_RES_ANGSTROM, projector: str = "separable",
                  seed: int = 0, noise_particles: int = 1000, batch_size: int = 128, device: str | torch.device = "cpu",
                  progress: bool = False, anchor_mask: np.ndarray | None = None, pose_samples: int = 1,
                  pose_spread_deg: float = 0.0, pose_spread_angstrom: float = 0.0,
                  pose_anchors: int = DEFAULT_POSE_ANCHORS) -> Refinement:
    """Refine the latent points ``z (n, d)`` of ``dataset``'s items (see the module docstring).

    Args:
        decode: latent points ``(K, d)`` -> GMM parameters ``(K, N, 5)`` (no gradients needed).
        dataset: a :class:`gmmplat.io.dataset.ParticleDataset` (item ``i`` is row ``i`` of ``z``); its
            box and pixel size set the band.
        high_res_angstrom: the band's limit (None: Nyquist; a limit finer than Nyquist is Nyquist).
        temperature: ``T`` > 0 (1: the exact Gaussian likelihood).
        anchor_stretch: ≥ 1, the anchors' spread about their mean (:func:`anchor_points`).
        noise_particles: size of the seeded subset that estimates the noise per ring.
        anchor_mask: ``(n,)`` bool, the items whose points place the anchors and their prior (default all;
            junk left out: its latent points say nothing of the conformations).
        pose_samples: ``J`` ≥ 1; above 1 the likelihood of each anchor is averaged over the pose (the
            stated one and ``J − 1`` seeded draws about it: rotation vectors of ``pose_spread_deg`` and
            origin offsets of ``pose_spread_angstrom`` per axis), ``ℓ_ik = log mean_j exp ℓ_ikj``, as the
            marginal oracle averages over pose errors; the noise and the quality use the stated pose.
        pose_anchors: the pose samples are projected at each particle's ``M`` most probable anchors at
            its stated pose (``ℓ − log J``, the stated pose's share, for the others): ``K + M (J − 1)``
            projections per particle instead of ``K J``.
    """
    from tqdm.auto import tqdm

    from ..projectors import PROJECTORS

    z = np.asarray(z, dtype=np.float64)
    n = len(dataset)
    if z.shape[0] != n:
        raise ConfigError(f"latent refinement: {z.shape[0]} latent points for {n} particles")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ConfigError(f"latent refinement: temperature must be > 0, got {temperature!r}")
    if not (anchor_stretch >= 1 and math.isfinite(anchor_stretch)):
        raise ConfigError(f"latent refinement: anchor_stretch must be ≥ 1, got {anchor_stretch!r}")
    if int(pose_anchors) < 1:
        raise ConfigError(f"latent refinement: pose_anchors must be ≥ 1, got {pose_anchors!r}")
    keep_freed_memory()
    start = time.perf_counter()
    device = torch.device(device)
    anchors, prior = anchor_points(z if anchor_mask is None else z[np.asarray(anchor_mask, bool)], n_anchors, seed,
                                   anchor_stretch)
    band = refinement_band(dataset.box, dataset.pixel_size_angstrom, high_res_angstrom)
    image_model = ImageModel(band, PROJECTORS.build(projector, band)).to(device)
    rings = RingSums(band).to(device)
    with torch.no_grad():
        params = decode(torch.as_tensor(anchors, dtype=torch.float32, device=device)).to(device, torch.float32)
    K = len(anchors)
    perturb = pose_perturbations(pose_samples, pose_spread_deg, pose_spread_angstrom, seed, device)

    k2 = (band.ky[:, None] ** 2 + band.kx[None, :] ** 2).to(device)  # (Ky, Kx) |k|² in 1/Å²

    def ring_sums(items: np.ndarray, bar) -> tuple[np.ndarray, ...]:
        """Residual, prediction-power, cross and power-times-|k|² ring sums ``(len(items), K, R)`` each."""
        out = np.empty((4, len(items), K, rings.n_rings), dtype=np.float64)
        for i in range(0, len(items), batch_size):
            chunk = items[i : i + batch_size]
            batch = dataset.get_batch(chunk).to(device)
            with torch.no_grad():
                O = image_model.observe(batch)
                C = image_model.ctf(batch.ctf, device)  # one CTF per batch, every anchor uses it
                for k in range(K):
                    P = image_model.predict(params[k], batch, ctf=C)
                    power_k2 = rings.ring_sums((P.real**2 + P.imag**2) * k2)
                    out[:, i : i + len(chunk), k] = torch.stack([*ring_terms(O, P, rings), power_k2]).cpu().numpy()
            bar.update(len(chunk))
        return out[0], out[1], out[2], out[3]

    def pose_marginal(items: np.ndarray) -> None:
        """``loglik[items]`` averaged over the pose samples at each item's ``M`` most probable anchors;
        the others keep the stated pose's share, ``ℓ − log J`` (a lower bound of their mean)."""
        J = len(perturb[0]) + 1
        M = min(int(pose_anchors), K)
        stated = loglik[items]
        top = np.argsort(-(stated + np.log(prior)[None]), axis=1)[:, :M]  # (n, M)
        extra = np.empty((len(items), M, J - 1))
        for i in range(0, len(items), batch_size):
            chunk = items[i : i + batch_size]
            batch = dataset.get_batch(chunk).to(device)
            with torch.no_grad():
                O = image_model.observe(batch)
                C = image_model.ctf(batch.ctf, device)
                for j, (R, d) in enumerate(zip(*perturb)):
                    moved = replace(batch, rotations=R @ batch.rotations, shifts_angstrom=batch.shifts_angstrom + d)
                    for m in range(M):
                        P = image_model.predict(params[torch.as_tensor(top[i : i + len(chunk), m], device=device)],
                                                moved, ctf=C)
                        extra[i : i + len(chunk), m, j] = log_likelihood(
                            ring_terms(O, P, rings)[0].cpu().numpy(), noise, temperature)
        at = np.arange(len(items))[:, None]
        every = np.concatenate([stated[at, top][:, :, None], extra], 2)  # (n, M, J)
        high = every.max(2)
        marginal = stated - math.log(J)
        marginal[at, top] = high + np.log(np.exp(every - high[:, :, None]).mean(2))
        loglik[items] = marginal

    def score(items: np.ndarray, sums) -> None:
        residual, power, cross, power_k2 = sums
        loglik[items] = log_likelihood(residual, noise, temperature)
        if len(perturb[0]):  # the mean likelihood over the pose samples, the stated pose among them
            pose_marginal(items)
        best = posterior(loglik[items], prior).argmax(1)  # the most probable anchor's prediction
        at = np.arange(len(items))
        quality[items], scale[items] = fit_quality(power[at, best], cross[at, best], noise)
        mean_k2 = np.where(power[at, best] > 0, power_k2[at, best] / np.maximum(power[at, best], 1e-300),
                           ring_frequency**2)
        bfactor[items] = fit_bfactor(power[at, best], cross[at, best], noise, mean_k2)[0]

    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 77]))
    subset = np.sort(rng.choice(n, size=min(n, int(noise_particles)), replace=False))
    rest = np.setdiff1d(np.arange(n), subset)
    loglik, quality, scale, bfactor = np.empty((n, K)), np.empty(n), np.empty(n), np.empty(n)
    ring_frequency = rings.rings.numpy() / (band.box * band.pixel_size_angstrom)
    with tqdm(total=n, desc="refine latent", unit="particle", disable=not progress) as bar:
        sums = ring_sums(subset, bar)
        noise = noise_per_ring(sums[0], rings)
        score(subset, sums)
        for i in range(0, len(rest), 8 * batch_size):
            chunk = rest[i : i + 8 * batch_size]
            score(chunk, ring_sums(chunk, bar))
    # row blocks: at 10⁶ items a whole (n, K) float64 posterior beside the log-likelihoods is a GB
    post, latent = np.empty((n, K), np.float32), np.empty((n, anchors.shape[1]), np.float32)
    for i in range(0, n, 65536):
        block = posterior(loglik[i : i + 65536], prior)
        post[i : i + 65536], latent[i : i + 65536] = block, block @ anchors
    options = dict(n_anchors=int(n_anchors), anchor_stretch=float(anchor_stretch), temperature=float(temperature),
                   projector=projector,
                   high_res_angstrom=None if high_res_angstrom is None else float(high_res_angstrom),
                   band_high_res_angstrom=float(band.high_res_angstrom), seed=int(seed),
                   noise_particles=int(len(subset)), encoder_variance=float(np.var(z, axis=0).sum()),
                   pose_samples=int(pose_samples), pose_spread_deg=float(pose_spread_deg),
                   pose_spread_angstrom=float(pose_spread_angstrom), pose_anchors=int(pose_anchors))
    return Refinement(latent=latent, anchors=anchors, prior=prior, posterior=post, noise_per_ring=noise,
                      ring_frequency=ring_frequency, options=options,
                      seconds=time.perf_counter() - start, quality=quality.astype(np.float32),
                      fitted_scale=scale.astype(np.float32), fitted_bfactor=bfactor.astype(np.float32))


def pose_perturbations(samples: int, spread_deg: float, spread_angstrom: float, seed: int, device
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """``J − 1`` seeded pose draws: rotations ``(J−1, 3, 3)`` (applied on the left) and origin offsets ``(J−1, 2)`` Å."""
    from ..physics.geometry import axis_angle_to_matrix

    if int(samples) < 1:
        raise ConfigError(f"latent refinement: pose_samples must be ≥ 1, got {samples!r}")
    if int(samples) > 1 and not (spread_deg > 0 or spread_angstrom > 0):
        raise ConfigError("latent refinement: pose_samples > 1 needs a pose spread (degrees or Å) above 0")
    g = torch.Generator().manual_seed(int(seed) * 1000 + 13)
    half = torch.randn(int(samples) // 2, 5, generator=g, dtype=torch.float64)
    # antithetic pairs (ε, −ε): the mean over the samples loses the odd part of the likelihood's variation
    draws = torch.cat([half, -half])[: int(samples) - 1]
    R = axis_angle_to_matrix(draws[:, :3] * math.radians(float(spread_deg)))
    return R.to(device, torch.float32), (draws[:, 3:] * float(spread_angstrom)).to(device, torch.float32)


def effective_pose_samples(samples: int, spread_deg: float, spread_angstrom: float, band: Band) -> int:
    """``samples``, or 1 where the spread moves the box's edge by under a fifth of the band's resolution
    (``radians(spread_deg) · box · apix / 2 + spread_angstrom``): averaging over such poses would change
    no projection measurably (the spread the pose refinement leaves on exact poses)."""
    edge = math.radians(float(spread_deg)) * band.box * band.pixel_size_angstrom / 2 + float(spread_angstrom)
    return int(samples) if edge >= 0.2 * float(band.high_res_angstrom) else 1
