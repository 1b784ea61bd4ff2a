"""Maps at latent points: decoded GMM maps and reconstructions from nearby particles.

* :func:`decoded_maps` renders the GMM the decoder gives at latent points
  (``gmmplat.model.gmm.render_map``; volumes ``[z, y, x]``).
* :func:`reconstruct` is a CTF-corrected Fourier backprojection with known poses
  (Wiener-like ``Σ CTF·F / (Σ CTF² + 1/SNR)``), inserting central slices with
  ``torch_fourier_slice`` (rotation matrices ``Aᵀ``, A = RELION's matrix;
  docs/conventions.md).  Images are line integrals ``∫ρ dz``, so the result is in
  the density units of the map the particles were projected from.
* :func:`reconstruct_near` picks the ``k`` particles nearest a latent point and
  reconstructs them.

Maps are written with the consensus map's voxel size and origin
(:func:`map_origin_angstrom`), so they overlay the consensus map and the
atomic model in ChimeraX.
"""
from __future__ import annotations

import os
from dataclasses import fields
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..io.mrc import write_map
from ..model.gmm import GMM, render_map
from ..physics.ctf import CTFParams
from ..physics.fourier import Band, origin_phase
from ..physics.image_model import ctf_on_band
from .latent import flatten_latent, nearest_rows

DecodeFn = Callable[[torch.Tensor], torch.Tensor]


def decoded_maps(decode_fn: DecodeFn, z, box: int, pixel_size_angstrom: float) -> torch.Tensor:
    """Render the decoded GMM at latent points ``z (B, d)`` -> maps ``(B, M, M, M)`` [z, y, x].

    ``decode_fn(z (B, d)) -> params (B, N, 5)`` (Å, amplitude, Å).
    """
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(-1, np.shape(z)[-1])
    with torch.no_grad():
        params = decode_fn(zt)
    return torch.stack([render_map(p.detach().cpu(), box, pixel_size_angstrom) for p in params])


def decoded_map(decode_fn: DecodeFn, z, box: int, pixel_size_angstrom: float) -> torch.Tensor:
    """The decoded map at one latent point ``z (d,)`` -> ``(M, M, M)`` [z, y, x]."""
    return decoded_maps(decode_fn, np.asarray(z, dtype=np.float32).reshape(1, -1), box, pixel_size_angstrom)[0]


def map_origin_angstrom(gmm: GMM) -> np.ndarray:
    """World position (x, y, z, Å) of voxel (0, 0, 0) of a map on the GMM's box: centre − (M//2)·apix."""
    return gmm.box_centre_world_angstrom - (int(gmm.box) // 2) * float(gmm.pixel_size_angstrom)


def write_volume(path: str | os.PathLike, volume, pixel_size_angstrom: float, origin_angstrom) -> None:
    """Write a map ``(M, M, M)`` [z, y, x] as MRC (atomic) with the given voxel size and world origin."""
    data = volume.detach().cpu().numpy() if isinstance(volume, torch.Tensor) else np.asarray(volume)
    write_map(path, data.astype(np.float32), pixel_size_angstrom, origin_angstrom)


def _centred_rfft_shifted(images: torch.Tensor) -> torch.Tensor:
    """Real ``(B, P, P)`` -> centred rfft with rows fftshifted ``(B, P, P//2+1)`` (torch-fourier-slice layout)."""
    Fi = torch.fft.rfft2(torch.fft.ifftshift(images, dim=(-2, -1)))
    return torch.fft.fftshift(Fi, dim=-2)


def reconstruct(
    images: torch.Tensor,
    rotations: torch.Tensor,
    shifts_angstrom: torch.Tensor,
    ctf: CTFParams | None,
    pixel_size_angstrom: float,
    snr: float = 1.0,
    pad_factor: float = 2.0,
    batch_size: int = 256,
) -> torch.Tensor:
    """CTF-corrected Fourier backprojection of particle images with known poses.

    Args:
        images: ``(B, M, M)`` particle images (line integrals, not phase-flipped).
        rotations: ``(B, 3, 3)`` RELION matrices A (a map point r lands at ``(A r)[:2]``).
        shifts_angstrom: ``(B, 2)`` rlnOriginX/YAngst (image = projection translated by −origin, RELION);
            undone, as ``relion_reconstruct`` does, by translating each image by +origin:
            its transform times ``exp(−2πi k·origin)``.
        ctf: per-particle CTF parameters, or None for images without CTF.
        pixel_size_angstrom: Å per pixel.
        snr: the Wiener term is ``1/snr``: ``V = Σ CTF·F / (Σ CTF² + 1/snr)``, sums over the
            (trilinearly weighted) slices through each voxel.
        pad_factor: real-space padding before insertion (reduces interpolation error).
        batch_size: images per insertion call.

    Returns:
        ``(M, M, M)`` float32 map [z, y, x], density units of the projected map.
    """
    from torch_fourier_slice.slice_insertion import insert_central_slices_rfft_3d_multichannel
    from torch_fourier_slice.volume_utils import separable_sinc2_correction

    if images.ndim != 3 or images.shape[-1] != images.shape[-2]:
        raise ConfigError(f"images must be (B, M, M), got {tuple(images.shape)}")
    if snr <= 0:
        raise ConfigError(f"snr must be positive, got {snr}")
    B, M = images.shape[0], images.shape[-1]
    apix = float(pixel_size_angstrom)
    p = int((M * (pad_factor - 1.0)) // 2)
    P = M + 2 * p
    ky = torch.fft.fftshift(torch.fft.fftfreq(P, d=apix)).to(torch.float64)
    kx = torch.fft.rfftfreq(P, d=apix).to(torch.float64)
    padded = Band(P, apix)  # the whole rfft grid of the padded images
    num = den = None
    for s in range(0, B, batch_size):
        sl = slice(s, min(B, s + batch_size))
        img = images[sl].to(torch.float32) / apix  # central slice of the voxel-sum DFT
        if p > 0:
            img = F.pad(img, [p] * 4)
        Fi = _centred_rfft_shifted(img)
        Fi = Fi * origin_phase(kx, ky, shifts_angstrom[sl]).conj()  # translate by +origin, as relion_reconstruct
        if ctf is None:
            c = torch.ones(Fi.shape, dtype=torch.float32)
        else:
            c = torch.fft.fftshift(ctf_on_band(ctf.subset(torch.arange(sl.start, sl.stop)), padded), dim=-2)
        channels = torch.stack([c * Fi, (c * c).to(torch.complex64)], dim=1)  # (b, 2, P, P//2+1)
        A_t = rotations[sl].to(torch.float32).transpose(-1, -2)
        dft, _ = insert_central_slices_rfft_3d_multichannel(
            image_rfft=channels, volume_shape=(P, P, P), rotation_matrices=A_t, fftfreq_max=0.5
        )
        num = dft[0] if num is None else num + dft[0]
        den = dft[1].real if den is None else den + dft[1].real
    vol_F = num / (den + 1.0 / float(snr))
    vol_F = torch.fft.ifftshift(vol_F, dim=(-3, -2))
    vol = torch.fft.fftshift(torch.fft.irfftn(vol_F, s=(P, P, P)), dim=(-3, -2, -1))
    vol = vol / separable_sinc2_correction(vol.shape)
    if p > 0:
        vol = vol[p : p + M, p : p + M, p : p + M]
    return vol.to(torch.float32).contiguous()


def particle_rows(rows: np.ndarray, latent_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Flattened latent rows -> ``(particle index, symmetry copy)``, each ``(k,)``."""
    K = 1 if len(latent_shape) == 2 else int(latent_shape[1])
    rows = np.asarray(rows, dtype=np.int64)
    return rows // K, rows % K


def reconstruct_near(
    latent: np.ndarray,
    z,
    k: int,
    table,
    read_images: Callable[[np.ndarray], np.ndarray],
    pixel_size_angstrom: float,
    symmetry_operators: torch.Tensor | None = None,
    snr: float = 1.0,
    invert_contrast: bool = False,
) -> tuple[torch.Tensor, np.ndarray]:
    """Reconstruct the ``k`` particles nearest the latent point ``z (d,)``.

    Args:
        latent: ``(n, d)`` or ``(n, K, d)`` (symmetry-expanded; copy ``j`` has pose ``A·R_j``).
        table: normalized particle table (``gmmplat.io.star``), one row per particle.
        read_images: ``indices (k,) -> images (k, M, M)`` (e.g. a ``StackReader``).
        symmetry_operators: ``(K, 3, 3)`` for expanded latents.
        invert_contrast: stacks with dark protein (multiplied by −1 before reconstruction).

    Returns:
        ``(map (M, M, M), particle indices (k,))``.
    """
    from ..physics.geometry import euler_to_matrix

    flatten_latent(latent)
    if len(table) != np.shape(latent)[0]:
        raise ConfigError(f"latent has {np.shape(latent)[0]} particles but the particle table {len(table)}")
    rows = nearest_rows(latent, z, k)
    pidx, copy = particle_rows(rows, np.shape(latent))
    part = table.iloc[pidx]
    A = euler_to_matrix(*(np.array(part[c], dtype=np.float64) for c in ("rot_deg", "tilt_deg", "psi_deg")))
    if np.ndim(latent) == 3:
        if symmetry_operators is None or symmetry_operators.shape[0] != np.shape(latent)[1]:
            raise ConfigError("a symmetry-expanded latent needs its K symmetry operators to reconstruct")
        A = A @ symmetry_operators.to(A.dtype)[torch.as_tensor(copy)]
    shifts = torch.as_tensor(np.array(part[["shift_x_angstrom", "shift_y_angstrom"]], dtype=np.float64))
    ctf = CTFParams.from_values(len(pidx), **{f.name: np.array(part[f.name], dtype=np.float64) for f in fields(CTFParams)})
    images = torch.as_tensor(np.asarray(read_images(pidx), dtype=np.float32))
    if invert_contrast:
        images = -images
    vol = reconstruct(images, A, shifts, ctf, pixel_size_angstrom, snr=snr)
    return vol, pidx


def fsc_curve(a: torch.Tensor, b: torch.Tensor, pixel_size_angstrom: float) -> tuple[np.ndarray, np.ndarray]:
    """Fourier shell correlation of two maps ``(M, M, M)``: ``(frequency 1/Å (M//2+1,), fsc (M//2+1,))``."""
    from torch_fourier_shell_correlation import fourier_shell_correlation

    M = a.shape[-1]
    fsc = fourier_shell_correlation(a.to(torch.float32), b.to(torch.float32)).cpu().numpy()
    return np.arange(len(fsc)) / (M * float(pixel_size_angstrom)), fsc
