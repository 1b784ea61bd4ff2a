"""The projector against paths that share none of its code.

1. Analytic real-space rendering of each projected Gaussian, then a centred FFT.
2. A 3D map rendered from the GMM, rotated voxel by voxel in real space with
   RELION's matrix and summed along z (scipy interpolation).
3. torch-fourier-slice's central-slice projection of the same map.
A convention error must fail here: the transposed rotation and the flipped
shift sign are asserted NOT to agree.
"""
import math

import numpy as np
import pytest
import torch
from scipy.ndimage import map_coordinates

from factories import random_gmm
from gmmplat.model.gmm import render_map
from gmmplat.physics.fourier import Band, image_to_rfft
from gmmplat.physics.geometry import euler_to_matrix
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import FourierSeparableProjector

EULERS = [(30.0, 60.0, -20.0), (-110.0, 130.0, 75.0), (200.0, 15.0, 10.0)]


def realspace_projection(params, A, shift, box, apix):
    """Sum of analytic projected Gaussians a √(2π) σ exp(-d²/2σ²) at pixel centres. (M, M) [y, x]."""
    p = params.double().numpy()
    xy = (np.asarray(A) @ p[:, :3].T).T[:, :2] - np.asarray(shift)
    grid = (np.arange(box) - box // 2) * apix
    img = np.zeros((box, box))
    for (px, py), a, s in zip(xy, p[:, 3], p[:, 4]):
        gx = np.exp(-((grid - px) ** 2) / (2 * s * s))
        gy = np.exp(-((grid - py) ** 2) / (2 * s * s))
        img += a * math.sqrt(2 * math.pi) * s * np.outer(gy, gx)
    return img


def rotate_and_sum(volume, A, shift, box, apix):
    """Project a [z, y, x] map: sample V(Aᵀ r') on the rotated grid, integrate along z'."""
    c = box // 2
    g = (np.arange(box) - c) * apix
    zz, yy, xx = np.meshgrid(g, g, g, indexing="ij")
    rp = np.stack([xx + shift[0], yy + shift[1], zz], axis=-1)  # image frame, shift undone
    r = rp @ np.asarray(A)  # row-vector form of Aᵀ r'
    coords = np.stack([r[..., 2], r[..., 1], r[..., 0]]) / apix + c  # [z, y, x] voxel indices
    sampled = map_coordinates(volume, coords.reshape(3, -1), order=3, mode="constant").reshape(box, box, box)
    return sampled.sum(axis=0) * apix


def cc(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def projector_image(params, A, shift, box, apix):
    band = Band(box, apix)
    F = ImageModel(band, FourierSeparableProjector(band)).project(params, torch.as_tensor(A)[None].float(),
                                                         torch.tensor([shift]).float())
    return band.band_to_images(F)[0].double().numpy()


@pytest.mark.parametrize("box", [48, 49])
@pytest.mark.parametrize("euler", EULERS)
def test_projector_equals_fft_of_realspace_rendering(box, euler):
    apix = 1.5
    params = random_gmm(40, box, apix, seed=box, sigma_px=(1.8, 2.5))
    A = euler_to_matrix(*euler).numpy()
    shift = (3.7, -2.1)
    ref = torch.as_tensor(realspace_projection(params, A, shift, box, apix))
    band = Band(box, apix)
    F = ImageModel(band, FourierSeparableProjector(band)).project(params, torch.as_tensor(A)[None].float(),
                                                         torch.tensor([shift]))
    F_ref = image_to_rfft(ref)
    rel = (F[0].to(torch.complex128) - F_ref).abs().max() / F_ref.abs().max()
    assert rel < 1e-4, rel


@pytest.fixture(scope="module")
def rendered():
    box, apix = 40, 2.0
    params = random_gmm(30, box, apix, seed=11, sigma_px=(1.5, 2.0), extent=0.22)
    volume = render_map(params, box, apix).double().numpy()
    return params, volume, box, apix


@pytest.mark.parametrize("euler", EULERS)
def test_projector_equals_realspace_rotation_of_rendered_map(rendered, euler):
    params, volume, box, apix = rendered
    A = euler_to_matrix(*euler).numpy()
    shift = (4.0, -6.0)
    ref = rotate_and_sum(volume, A, shift, box, apix)
    ours = projector_image(params, A, shift, box, apix)
    assert cc(ours, ref) > 0.995
    assert np.abs(ours - ref).max() < 0.05 * np.abs(ref).max()
    # a convention error must show: transposed rotation and flipped shift sign disagree
    assert cc(projector_image(params, A.T, shift, box, apix), ref) < 0.9
    assert cc(projector_image(params, A, (-shift[0], -shift[1]), box, apix), ref) < 0.9


def test_shift_sign_moves_image_by_minus_origin():
    """One Gaussian at the centre, origin (+6 Å, −4 Å): RELION puts the particle at centre − origin,
    i.e. pixel c + (−3, +2) at 2 Å/px (x = column, y = row)."""
    box, apix = 32, 2.0
    params = torch.tensor([[0.0, 0.0, 0.0, 1.0, 3.0]])
    img = projector_image(params, np.eye(3), (6.0, -4.0), box, apix)
    iy, ix = np.unravel_index(np.argmax(img), img.shape)
    assert (ix, iy) == (box // 2 - 3, box // 2 + 2)


def test_projector_matches_torch_fourier_slice(rendered):
    torch_fourier_slice = pytest.importorskip("torch_fourier_slice")
    params, volume, box, apix = rendered
    for euler in EULERS:
        A = euler_to_matrix(*euler)
        ref = torch_fourier_slice.project_3d_to_2d(
            torch.as_tensor(volume).float(), rotation_matrices=A.T[None].float(), pad_factor=2.0
        )[0].double().numpy() * apix
        ours = projector_image(params, A.numpy(), (0.0, 0.0), box, apix)
        assert cc(ours, ref) > 0.995
        wrong = torch_fourier_slice.project_3d_to_2d(
            torch.as_tensor(volume).float(), rotation_matrices=A[None].float(), pad_factor=2.0
        )[0].double().numpy()
        assert cc(ours, wrong) < 0.95


def test_simulator_images_equal_projector_with_ctf():
    """The simulator's real-space path (gmmplat.synthetic.simulate) and the separable projector agree to
    numerical precision on noise-free, CTF-modulated images of the same atoms and poses."""
    from gmmplat.physics.ctf import CTFParams, ctf_rfft
    from gmmplat.physics.geometry import random_rotations
    from gmmplat.synthetic.simulate import apply_ctf, project_atoms

    box, apix, sigma = 48, 2.0, 4.0  # σ = 2 px: no aliasing
    g = torch.Generator().manual_seed(21)
    xyz = (torch.rand(60, 3, generator=g) * 2 - 1) * 20.0
    amp = torch.tensor([6.0, 7.0, 8.0]).repeat(20)
    A = random_rotations(4, g)
    shifts = (torch.rand(4, 2, generator=g) * 2 - 1) * 4.0
    ctf = CTFParams.from_values(4, defocus_u_angstrom=[9e3, 12e3, 15e3, 2e4], defocus_v_angstrom=11e3,
                                defocus_angle_deg=40.0, voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    sim = apply_ctf(project_atoms(xyz.numpy(), amp.numpy(), A.numpy(), shifts.numpy(), box, apix, sigma), ctf, apix)
    band = Band(box, apix)
    params = torch.cat([xyz, amp[:, None], torch.full((60, 1), sigma)], dim=1)
    F = ImageModel(band, FourierSeparableProjector(band)).project(params, A.float(), shifts.float(),
                                                             ctf_rfft(ctf, box, apix, band))
    ours = band.band_to_images(F).double()
    assert (ours - sim).abs().max() < 1e-4 * sim.abs().max()
