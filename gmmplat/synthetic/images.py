"""Real-space rendering of Gaussian atoms: projections, CTF, volumes and image stacks.

Images are formed independently of any GMM projector: every atom is a 3D
Gaussian of peak height = its electron count and width ``sigma_angstrom``; its
line integral along the viewing direction is the 2D Gaussian
``a·√(2π)·σ·exp(−d²/(2σ²))`` summed at pixel centres (docs/conventions.md).
Atom centres ``r`` (Å from the box centre) project to ``(A r)[:2] − origin``
with RELION's ``A = euler_to_matrix(rot, tilt, psi)``; pixel ``j`` sits at
``(j − M//2)·apix``.  The CTF multiplies the centred transform.

:func:`render_particles` is the whole clean-image chain, shared by the simulator
(:func:`gmmplat.synthetic.simulate.simulate_dataset`) and the oracle (:func:`gmmplat.analysis.oracle.frame_images`),
so that the oracle scores the very images the simulator drew.
"""
from __future__ import annotations

import math
from pathlib import Path

import mrcfile
import numpy as np
import torch

from ..io.atomic import atomic_write_path
from ..physics.ctf import CTFParams, ctf_rfft


def project_atoms(
    xyz_angstrom: np.ndarray,
    amplitudes: np.ndarray,
    rotations: np.ndarray,
    shifts_angstrom: np.ndarray,
    box: int,
    pixel_size_angstrom: float,
    sigma_angstrom: float,
) -> np.ndarray:
    """Real-space projections of Gaussian atoms, float64 ``(B, M, M)`` ``[y, x]`` (density × Å).

    Args:
        xyz_angstrom: ``(N, 3)`` or ``(B, N, 3)`` atom centres, Å from the box centre.
        amplitudes: ``(N,)`` peak heights (electrons).
        rotations: ``(B, 3, 3)`` RELION matrices ``A``; ``shifts_angstrom``: ``(B, 2)`` origin (x, y), Å.

    Each image is ``Σ_n a_n √(2π) σ exp(−|q − p_n|²/(2σ²))`` at pixel centres ``q``, with
    ``p_n = (A r_n)[:2] − origin`` (RELION: the particle sits at the image centre minus rlnOrigin), computed as a product of x and y factors.
    """
    A = np.asarray(rotations, dtype=np.float64)
    xyz = np.broadcast_to(np.asarray(xyz_angstrom, dtype=np.float64), (A.shape[0],) + np.shape(xyz_angstrom)[-2:])
    p = xyz @ np.swapaxes(A[:, :2, :], 1, 2) - np.asarray(shifts_angstrom, dtype=np.float64)[:, None, :]
    grid = (np.arange(box, dtype=np.float64) - box // 2) * pixel_size_angstrom  # (M,)

    def factor(coord):  # (B, N) -> (B, N, M), in place for speed
        d = grid - coord[..., None]
        d *= d
        d *= -0.5 / sigma_angstrom**2
        return np.exp(d, out=d)

    weight = np.asarray(amplitudes, dtype=np.float64) * math.sqrt(2 * math.pi) * sigma_angstrom
    ey = torch.from_numpy(factor(p[..., 1]) * weight[:, None])
    return (ey.transpose(1, 2) @ torch.from_numpy(factor(p[..., 0]))).numpy()  # (B, M, M); torch: BLAS bmm


def apply_ctf(
    images: torch.Tensor | np.ndarray, ctf: CTFParams | torch.Tensor, pixel_size_angstrom: float
) -> torch.Tensor:
    """Multiply centred transforms of ``(B, M, M)`` images by RELION's CTF; float64 tensor ``(B, M, M)``.

    ``ctf``: parameters of the B particles, or the CTF already evaluated, ``(B, M, M//2+1)``.
    Equals ``rfft_to_image(image_to_rfft(images) * ctf)``: a filter commutes with cyclic shifts, so
    the ``ifftshift``/``fftshift`` pair cancels and is skipped (tests/test_simulate.py checks this).
    """
    images = torch.as_tensor(images, dtype=torch.float64)
    M = images.shape[-1]
    if isinstance(ctf, CTFParams):
        ctf = ctf_rfft(ctf, M, pixel_size_angstrom)
    return torch.fft.irfft2(torch.fft.rfft2(images) * ctf.to(torch.float64), s=(M, M))


def render_particles(
    xyz_angstrom: np.ndarray,
    amplitudes: np.ndarray,
    rotations: np.ndarray,
    shifts_angstrom: np.ndarray,
    ctf: CTFParams | torch.Tensor,
    box: int,
    pixel_size_angstrom: float,
    sigma_angstrom: float,
    scale: np.ndarray | torch.Tensor | None = None,
    invert_contrast: bool = False,
    replace: dict[int, np.ndarray] | None = None,
) -> torch.Tensor:
    """Noise-free particle images, float64 ``(B, M, M)``: projection, CTF, scale, contrast.

    ``xyz_angstrom``, ``amplitudes``, ``rotations``, ``shifts_angstrom`` as :func:`project_atoms`;
    ``ctf`` as :func:`apply_ctf`; ``scale`` ``(B,)`` per-particle contrast scale (1 when None);
    ``replace``: ``{row: projection (M, M)}`` put in place of that row's projection before the
    CTF (the simulator's junk particles).
    """
    img = project_atoms(xyz_angstrom, amplitudes, rotations, shifts_angstrom, box, pixel_size_angstrom,
                        sigma_angstrom)
    for row, projection in (replace or {}).items():
        img[row] = projection
    img = apply_ctf(img, ctf, pixel_size_angstrom)
    if scale is not None:
        img = img * torch.as_tensor(scale, dtype=torch.float64)[:, None, None]
    return -img if invert_contrast else img


def render_volume(
    xyz_angstrom: np.ndarray, amplitudes: np.ndarray, box: int, pixel_size_angstrom: float, sigma_angstrom: float,
    chunk: int = 1024,
) -> np.ndarray:
    """Sum of 3D Gaussians sampled at voxel centres, float32 ``(M, M, M)`` ``[z, y, x]`` (no wrap-around).

    ``xyz_angstrom`` ``(N, 3)`` Å from the box centre (voxel ``M//2``), ``amplitudes`` ``(N,)`` peak heights.
    """
    xyz = torch.as_tensor(xyz_angstrom, dtype=torch.float32)
    amp = torch.as_tensor(amplitudes, dtype=torch.float32)
    grid = (torch.arange(box, dtype=torch.float32) - box // 2) * pixel_size_angstrom
    s2 = 2.0 * sigma_angstrom**2
    vol = torch.zeros(box, box * box, dtype=torch.float32)
    for i in range(0, xyz.shape[0], chunk):
        e = torch.exp(-((grid[None, None, :] - xyz[i : i + chunk, :, None]) ** 2) / s2)  # (n, 3, M)
        yx = (e[:, 1, :, None] * e[:, 0, None, :]).reshape(e.shape[0], -1)  # (n, M*M)
        vol += (e[:, 2, :] * amp[i : i + chunk, None]).T @ yx
    return vol.reshape(box, box, box).numpy()


def write_stack(path: str | Path, images: np.ndarray, pixel_size_angstrom: float) -> None:
    """Write float32 images ``(n, M, M)`` as an MRC image stack (.mrcs, ispg 0), atomically."""
    with atomic_write_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(np.ascontiguousarray(images, dtype=np.float32))
            mrc.set_image_stack()
            mrc.voxel_size = float(pixel_size_angstrom)
            mrc.update_header_stats()
            mrc.header.label[0] = b"gmmplat simulate".ljust(80)  # no timestamp: same seed, same bytes
            mrc.header.nlabl = 1
