"""Each particle's B-factor: the envelope ``exp(−B|k|²/4)`` at which its prediction fits its image best.

Real particles differ in how fast their signal falls with frequency (motion, drift, radiation damage,
ice): a B-factor per particle of tens of Å².  The latent refinement already holds, for each particle's
most probable state, the ring sums of its prediction's power ``A_r = Σ w |P|²`` and of the cross term
``C_r = Σ w Re P·conj(O)`` (:func:`gmmplat.refine.latent.ring_terms`), and the noise power per ring
``σ²_r``.  Multiplying the prediction by an envelope ``e_r(B) = exp(−B k_r²/4)`` (``k_r²``: the ring's
``|k|²`` in 1/Å², weighted by the prediction's power; the convention of the CTF's envelope,
:mod:`gmmplat.physics.ctf`) and fitting its scale
by least squares in the whitened metric, the Gaussian log-likelihood rises over the noise model alone by

    g(B) = c(B)² / a(B),   a(B) = Σ_r e_r(B)² A_r / (2σ²_r),   c(B) = Σ_r e_r(B) C_r / (2σ²_r)

(``g = 0`` where ``c ≤ 0``), at the scale ``s(B) = c(B) / a(B)``.  :func:`fit_bfactor` maximises ``g``
over a grid of B and refines the maximum by a parabola through its neighbours.  The B found is the
particle's fall-off beyond what the prediction already has (its Gaussians' widths and the CTF's stated
B-factor): on data simulated from the GMM itself, the simulated B.

How well one image fixes its B depends on the band: at 10 Å, where the latent refinement works,
``e`` spans only 0.90–0.74 for B of 40–120 Å², so at SNR 0.05 each estimate scatters widely and the
median over many particles is what to read (docs/benchmarks.md, "Real data").
"""
from __future__ import annotations

import numpy as np

__all__ = ["BFACTOR_GRID_ANGSTROM2", "fit_bfactor"]

#: B-factors tried (Å²): a negative B (a particle sharper than its prediction) is allowed, since the
#: prediction's widths come from the consensus map, which averages every particle's fall-off.
BFACTOR_GRID_ANGSTROM2 = np.arange(-200.0, 600.0 + 1e-9, 4.0)


def fit_bfactor(power: np.ndarray, cross: np.ndarray, noise: np.ndarray, ring_k2: np.ndarray,
                grid_angstrom2: np.ndarray = BFACTOR_GRID_ANGSTROM2, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(bfactor (n,) Å², scale (n,))``: the envelope's B and scale that fit each prediction best.

    Args:
        power, cross: ``(n, R)`` ring sums ``Σ w |P|²`` and ``Σ w Re P·conj(O)`` of each particle's prediction.
        noise: ``(R,)`` noise power per whole-plane cell of each ring (``σ²_r``).
        ring_k2: ``(R,)`` or ``(n, R)``: each ring's ``|k|²`` in 1/Å², best the prediction's power-weighted
            mean ``Σ w |P|² |k|² / Σ w |P|²``: a ring's cells span a pixel in radius, and where the power
            falls steeply its inner cells weigh most (the ring's centre biases B by about −5 Å² at box 24).
        grid_angstrom2: ``(G,)`` increasing B-factors tried.
        chunk: particles per block (the envelopes are ``(chunk, G, R)``).

    Returns:
        The B of the best fit (refined between grid points; at the grid's ends it stays there) and its
        scale ``c/a``; NaN for both where no B gives a positive scale (empty ice fits nothing).
    """
    power = np.asarray(power, np.float64) / (2.0 * np.asarray(noise, np.float64))
    cross = np.asarray(cross, np.float64) / (2.0 * np.asarray(noise, np.float64))
    k2 = np.asarray(ring_k2, np.float64)
    grid = np.asarray(grid_angstrom2, np.float64)
    if k2.ndim == 1 and k2.shape[0] == power.shape[-1]:
        k2 = np.broadcast_to(k2, power.shape)
    if power.shape != cross.shape or k2.shape != power.shape:
        raise ValueError(f"power {power.shape}, cross {cross.shape} and ring |k|² {np.shape(ring_k2)} disagree")
    if grid.ndim != 1 or len(grid) < 3 or np.any(np.diff(grid) <= 0):
        raise ValueError("the B-factor grid must hold at least 3 increasing values")
    bfactor, scale = np.full(len(power), np.nan), np.full(len(power), np.nan)
    for i in range(0, len(power), int(chunk)):
        at = slice(i, i + int(chunk))
        bfactor[at], scale[at] = _fit_block(power[at], cross[at], k2[at], grid)
    return bfactor, scale


def _fit_block(power: np.ndarray, cross: np.ndarray, k2: np.ndarray, grid: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    envelope = np.exp(-grid[None, :, None] * k2[:, None, :] / 4.0)  # (n, G, R)
    a = np.maximum(np.einsum("ngr,nr->ng", envelope**2, power), 1e-300)
    c = np.einsum("ngr,nr->ng", envelope, cross)
    gain = np.where(c > 0, c * c / a, 0.0)
    best = gain.argmax(1)
    rows = np.arange(len(best))
    inner = np.clip(best, 1, len(grid) - 2)
    g0, g1, g2 = gain[rows, inner - 1], gain[rows, inner], gain[rows, inner + 1]
    curvature = g0 - 2 * g1 + g2
    # the vertex of the parabola through the three points about an interior maximum (uniform steps there)
    step = np.where((best == inner) & (curvature < 0), 0.5 * (g0 - g2) / np.where(curvature < 0, curvature, -1.0), 0.0)
    bfactor = grid[best] + np.clip(step, -0.5, 0.5) * (grid[inner + 1] - grid[inner - 1]) / 2
    env = np.exp(-bfactor[:, None] * k2 / 4.0)
    scale = (cross * env).sum(1) / np.maximum((power * env**2).sum(1), 1e-300)
    fitted = gain[rows, best] > 0
    return np.where(fitted, bfactor, np.nan), np.where(fitted, scale, np.nan)
