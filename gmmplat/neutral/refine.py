"""Refinement of a GMM against the consensus map in 3D Fourier space.

The GMM's 3D transform is evaluated only inside the resolution sphere
``0 < |k| ≤ 1/d`` with the separable idea of :func:`gmmplat.model.gmm.render_map`
(a z, a y and an x factor per Gaussian, combined by one matrix product) and
compared with the map's centred transform there:

``loss = Σ w(k) |G(k) − F(k)|² / Σ w(k) |F(k)|²``

with ``w(k) = 1/|k|`` (``weighting="projection"``: by the Fourier slice
theorem this is, up to a constant, the squared error of the projections
averaged over uniformly distributed directions; see ``docs/build.md``) or
``w = 1`` (``"uniform"``). ``k = 0`` is left out, so a constant offset of the
map does not matter. Positions, log-amplitudes and log-widths are optimised
with Adam; an optional regularizer (e.g. the Cα backbone) is added.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..io.mrc import MapData
from ..model.gmm import AMPLITUDE, GMM, WIDTH, XYZ, render_map
from ..physics.fsc import fsc_curve, resolution_at_threshold

WEIGHTINGS = ("projection", "uniform")


class FourierSphere:
    """The rfft grid of a ``box³`` map cropped to the cube around ``|k| ≤ 1/d``, with the sphere mask.

    Attributes:
        z_index (Kz,), y_index (Ky,), x_index (Kx,): kept rows of the full rfftn grid (FFT order).
        kz, ky, kx: their frequencies (1/Å).
        mask (Kz, Ky, Kx) bool: ``0 < |k| ≤ 1/d``.
        weight (Kz, Ky, Kx): ``w(k)`` times the Hermitian multiplicity (2 for ``kx > 0``), 0 outside the mask.
    """

    def __init__(self, box: int, pixel_size_angstrom: float, resolution_angstrom: float,
                 weighting: str = "projection"):
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"unknown Fourier weighting {weighting!r} (use {' or '.join(WEIGHTINGS)})")
        M, apix = int(box), float(pixel_size_angstrom)
        if resolution_angstrom < 2 * apix * (1 - 1e-6):
            raise ConfigError(f"resolution {resolution_angstrom:g} Å is beyond Nyquist ({2 * apix:g} Å)")
        self.box, self.pixel_size_angstrom, self.resolution_angstrom = M, apix, float(resolution_angstrom)
        kmax = 1.0 / float(resolution_angstrom) + 1e-9
        k_full = torch.fft.fftfreq(M, d=apix, dtype=torch.float64)
        k_half = torch.fft.rfftfreq(M, d=apix, dtype=torch.float64)
        self.z_index = torch.nonzero(k_full.abs() <= kmax).flatten()
        self.y_index = self.z_index.clone()
        self.x_index = torch.nonzero(k_half <= kmax).flatten()
        self.kz, self.ky, self.kx = k_full[self.z_index], k_full[self.y_index], k_half[self.x_index]
        k2 = self.kz[:, None, None] ** 2 + self.ky[None, :, None] ** 2 + self.kx[None, None, :] ** 2
        self.mask = (k2 <= kmax**2) & (k2 > 0)
        w = 1.0 / torch.sqrt(torch.where(k2 > 0, k2, 1.0)) if weighting == "projection" else torch.ones_like(k2)
        mult = torch.where(self.kx > 0, 2.0, 1.0)[None, None, :]
        self.weight = torch.where(self.mask, w * mult, 0.0).to(torch.float32)
        self.kmax2 = kmax**2

    def crop(self, F: torch.Tensor) -> torch.Tensor:
        """Full rfftn ``(M, M, M//2+1)`` -> ``(Kz, Ky, Kx)``."""
        return F[self.z_index][:, self.y_index][:, :, self.x_index]

    def map_transform(self, data) -> torch.Tensor:
        """Centred transform of a map ``[z, y, x]`` on the sphere's grid ``(Kz, Ky, Kx)`` complex64."""
        t = torch.as_tensor(np.asarray(data, dtype=np.float32))
        return self.crop(torch.fft.rfftn(torch.fft.ifftshift(t)))

    def gmm_transform(self, params: torch.Tensor) -> torch.Tensor:
        """Transform of the density of ``params (N, 5)`` as the map's discrete transform would see it.

        ``Σ_i a_i (2πσ_i²)^{3/2} / apix³ · exp(-2π²σ_i²|k|²) · exp(-2πi k·μ_i)``, split into z, y and x
        factors; returns ``(Kz, Ky, Kx)`` complex (complex64 for float32 input), differentiable.
        """
        p = params if params.dtype == torch.float64 else params.to(torch.float32)
        sig = p[:, WIDTH]
        weight = p[:, AMPLITUDE] * (2 * math.pi * sig**2) ** 1.5 / self.pixel_size_angstrom**3
        s2 = (2 * math.pi**2) * sig**2
        k = [v.to(device=p.device, dtype=p.dtype) for v in (self.kz, self.ky, self.kx)]
        return _SeparableTransform3D.apply(p[:, 0], p[:, 1], p[:, 2], weight, s2, *k, self.kmax2)


class _SeparableTransform3D(torch.autograd.Function):
    """``F[z, y, x] = Σ_n Z[n, z] Y[n, y] w_n X[n, x]`` with ``Z = exp(-s2 kz² - 2πi cz kz)`` etc.

    Forward: per slab of z rows, one product ``(Z⊗Y)ᵀ (w X)`` of ``(N, cz·Ky')`` by ``(N, Kx)``, with
    ``Ky'`` the y rows that reach the sphere from that slab (``ky² ≤ kmax² − min kz²``). ``Z⊗Y`` is rebuilt
    per slab in the backward pass instead of kept, so memory is bounded by the slab, not by
    ``N × Kz × Ky`` (at 8,000 Gaussians and box 256 the whole factor is gigabytes). The backward pass is
    written out (two products and two reductions per slab) with PyTorch's convention for complex
    gradients (as in the separable projector).
    """

    @staticmethod
    def forward(ctx, cx, cy, cz, w, s2, kz, ky, kx, kmax2):
        Z, Y, X = (_factor(k, c, s2) for k, c in ((kz, cz), (ky, cy), (kx, cx)))
        wX = X * w[:, None]
        out = Z.new_zeros(len(kz), len(ky), len(kx))
        for zs, ys in _slabs(len(w), kz, ky, kmax2):
            ZY = (Z[:, zs, None] * Y[:, None, ys]).reshape(len(w), -1)
            out[zs][:, ys] = (ZY.T @ wX).reshape(zs.stop - zs.start, len(ys), len(kx))
        ctx.save_for_backward(Z, Y, X, w, kz, ky, kx)
        ctx.kmax2 = kmax2
        return out

    @staticmethod
    def backward(ctx, G):
        Z, Y, X, w, kz, ky, kx = ctx.saved_tensors
        two_pi = 2 * math.pi
        wX = X * w[:, None]
        gX, gZ, gY = torch.zeros_like(X), torch.zeros_like(Z), torch.zeros_like(Y)
        for zs, ys in _slabs(len(w), kz, ky, ctx.kmax2):
            Ys = Y[:, ys]
            Gs = G[zs][:, ys].reshape(-1, len(kx))  # (cz·Ky', Kx)
            ZY = (Z[:, zs, None] * Ys[:, None, :]).reshape(len(w), -1)
            gX += ZY.conj() @ Gs  # gradient w.r.t. w X
            gZY = (wX.conj() @ Gs.T).reshape(len(w), zs.stop - zs.start, len(ys))
            gZ[:, zs] = torch.einsum("nzy,ny->nz", gZY, Ys.conj())
            gY[:, ys] += torch.einsum("nzy,nz->ny", gZY, Z[:, zs].conj())
        PX, PY, PZ = gX.conj() * X, gY.conj() * Y, gZ.conj() * Z
        d_w = PX.real.sum(-1)
        d_cx = two_pi * w * (PX.imag @ kx)
        d_cy = two_pi * (PY.imag @ ky)
        d_cz = two_pi * (PZ.imag @ kz)
        d_s2 = -w * (PX.real @ kx**2) - PY.real @ ky**2 - PZ.real @ kz**2
        return d_cx, d_cy, d_cz, d_w, d_s2, None, None, None, None


# Elements of one slab's (N, cz·Ky') complex factor: about 256 MB in complex64.
_CHUNK_ELEMENTS = 1 << 25


def _factor(k: torch.Tensor, c: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """``(N, K)`` complex ``exp(-s2 k² - 2πi c k)``."""
    return torch.polar(torch.exp(-s2[:, None] * k[None] ** 2), (-2 * math.pi) * c[:, None] * k[None])


def _slabs(n: int, kz: torch.Tensor, ky: torch.Tensor, kmax2: float):
    """``(z slice, y indices)`` per slab: ``n × rows × Ky`` under ``_CHUNK_ELEMENTS``, y rows that reach the sphere."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * len(ky)))
    out = []
    for z0 in range(0, len(kz), rows):
        zs = slice(z0, min(len(kz), z0 + rows))
        reach = kmax2 * (1 + 1e-9) - float((kz[zs] ** 2).min())
        out.append((zs, torch.nonzero(ky**2 <= reach).flatten().to(ky.device)))
    return out


def fourier_loss(G: torch.Tensor, F: torch.Tensor, sphere: FourierSphere) -> torch.Tensor:
    """``Σ w |G − F|² / Σ w |F|²`` over the sphere (0 for a perfect match, 1 for G = 0)."""
    w = sphere.weight
    return (w * (G - F).abs() ** 2).sum() / (w * F.abs() ** 2).sum().clamp_min(1e-30)


def fit_amplitude_scales(params: torch.Tensor, groups: np.ndarray, map_data: MapData, resolution_angstrom: float,
                         weighting: str = "projection") -> np.ndarray:
    """Least-squares factors ``s_g`` (one per group label 0..G-1) with ``Σ_g s_g G_g ≈ F`` on the sphere.

    Groups are e.g. the ``origin`` extra (model atoms in electron units,
    pseudoatoms in map units). Non-positive solutions fall back to one common factor.
    """
    groups = np.asarray(groups, dtype=np.int64)
    sphere = FourierSphere(map_data.data.shape[0], map_data.voxel_size_angstrom, resolution_angstrom, weighting)
    F = sphere.map_transform(map_data.data)
    labels = np.unique(groups)
    with torch.no_grad():
        parts = [sphere.gmm_transform(params[torch.as_tensor(groups == g)]) for g in labels]
    w = sphere.weight.double()
    A = np.array([[float((w * (a.conj() * b).real).sum()) for b in parts] for a in parts])
    b = np.array([float((w * (a.conj() * F).real).sum()) for a in parts])
    s = np.linalg.lstsq(A, b, rcond=None)[0]
    if np.any(s <= 0):
        total = sum(parts)
        s = np.full(len(parts), float((w * (total.conj() * F).real).sum()) / float((w * total.abs() ** 2).sum()))
    out = np.ones(int(groups.max()) + 1 if len(groups) else 0)
    out[labels] = s
    return out


def scale_to_map(gmm: GMM, map_data: MapData, resolution_angstrom: float, weighting: str = "projection") -> tuple[GMM, np.ndarray]:
    """Copy of ``gmm`` with amplitudes in the map's units: one factor per ``origin`` group (all one group without it)."""
    groups = np.asarray(gmm.extras.get("origin", np.zeros(gmm.n)), dtype=np.int64)
    s = fit_amplitude_scales(gmm.params, groups, map_data, resolution_angstrom, weighting)
    params = gmm.params.clone()
    params[:, AMPLITUDE] *= torch.as_tensor(s[groups], dtype=torch.float32)
    return GMM(params, gmm.box, gmm.pixel_size_angstrom, gmm.box_centre_world_angstrom, dict(gmm.extras)), s


@dataclass
class RefineResult:
    """Refined GMM, loss per step (``data``, ``regularizer``) and wall time in seconds."""

    gmm: GMM
    data_loss: list[float] = field(default_factory=list)
    regularizer_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def refine_gmm(gmm: GMM, map_data: MapData, resolution_angstrom: float, steps: int = 300,
               regularizer=None, weighting: str = "projection", lr_xyz_angstrom: float | None = None,
               lr_log_amplitude: float = 0.03, lr_log_sigma: float = 0.02, fit_amplitude: bool = True,
               fit_sigma: bool = True, sigma_bounds_angstrom: tuple[float, float] | None = None,
               threads: int | None = None) -> RefineResult:
    """Optimise positions, amplitudes and widths of ``gmm`` to match ``map_data`` up to ``resolution_angstrom``.

    Args:
        gmm: start (amplitudes already in map units, e.g. :func:`scale_to_map`).
        regularizer: callable ``params (N, 5) -> scalar`` added to the loss
            (a :class:`gmmplat.regularizers.Regularizer`, already weighted).
        lr_xyz_angstrom: Adam step for positions (default ``0.03 d``); all rates decay linearly to 0.
        sigma_bounds_angstrom: widths are clamped to this range (default ``0.5 σ_d`` to
            ``max(4 σ_d, 2 max σ)``, σ_d = d/(π√2)).
        threads: torch CPU threads during the loop (None: unchanged).

    Returns:
        :class:`RefineResult`; the GMM keeps the extras of ``gmm``.
    """
    t0 = time.perf_counter()
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        sphere = FourierSphere(gmm.box, gmm.pixel_size_angstrom, resolution_angstrom, weighting)
        F = sphere.map_transform(map_data.data)
        p0 = gmm.params.detach().clone()
        sigma_d = float(resolution_angstrom) / (math.pi * math.sqrt(2))
        lo, hi = sigma_bounds_angstrom or (0.5 * sigma_d, max(4 * sigma_d, 2 * float(p0[:, WIDTH].max())))
        xyz = p0[:, XYZ].clone().requires_grad_(True)
        log_a = torch.log(p0[:, AMPLITUDE].clamp_min(1e-12)).requires_grad_(fit_amplitude)
        log_s = torch.log(p0[:, WIDTH].clamp(lo, hi)).requires_grad_(fit_sigma)
        groups = [{"params": [xyz], "lr": lr_xyz_angstrom or 0.03 * float(resolution_angstrom)}]
        if fit_amplitude:
            groups.append({"params": [log_a], "lr": lr_log_amplitude})
        if fit_sigma:
            groups.append({"params": [log_s], "lr": lr_log_sigma})
        opt = torch.optim.Adam(groups)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: max(0.0, 1.0 - i / max(1, steps)))

        def assemble():
            return torch.cat([xyz, torch.exp(log_a)[:, None], torch.exp(log_s).clamp(lo, hi)[:, None]], dim=1)

        result = RefineResult(gmm)
        for _ in range(int(steps)):
            opt.zero_grad(set_to_none=True)
            params = assemble()
            data = fourier_loss(sphere.gmm_transform(params), F, sphere)
            reg = regularizer(params) if regularizer is not None else params.new_zeros(())
            (data + reg).backward()
            opt.step()
            sched.step()
            result.data_loss.append(float(data.detach()))
            result.regularizer_loss.append(float(reg.detach()))
        with torch.no_grad():
            final = assemble().detach()
        result.gmm = GMM(final, gmm.box, gmm.pixel_size_angstrom, gmm.box_centre_world_angstrom, dict(gmm.extras))
        result.seconds = time.perf_counter() - t0
        return result
    finally:
        torch.set_num_threads(old_threads)


def gmm_map_fsc(gmm: GMM | torch.Tensor, map_data: MapData, threshold: float = 0.5):
    """Render ``gmm`` on the map's grid and return ``(frequency (K,), fsc (K,), resolution at threshold [Å])``."""
    params = gmm.params if isinstance(gmm, GMM) else gmm
    box, apix = map_data.data.shape[0], float(map_data.voxel_size_angstrom)
    with torch.no_grad():
        rendered = render_map(params, box, apix)
    freq, curve = fsc_curve(rendered, map_data.data, apix)
    return freq, curve, resolution_at_threshold(freq, curve, threshold)
