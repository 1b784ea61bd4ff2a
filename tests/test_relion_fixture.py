"""Conventions pinned against data gmmplat did not make: tests/data/relion_convention/.

48 noise-free, white-protein particles of a 1656-atom model, written by an independent
simulator whose STAR file cryoDRGN 4.3.1 reconstructs to FSC 0.988 (−0.835 with the
origin sign flipped); see tests/data/relion_convention/README.md.  Every convention the
projector, the simulator and the reconstruction use (Euler matrix, origin sign, x/y order,
CTF sign, polarity, box centre, MRC origin) must reproduce these images, and each single
reversal must visibly fail.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gmmplat.io.models import read_model
from gmmplat.io.mrc import read_map
from gmmplat.io.stacks import StackReader
from gmmplat.io.star import read_particle_star
from gmmplat.neutral.from_model import electron_counts
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import Band
from gmmplat.physics.geometry import euler_to_matrix
from gmmplat.physics.image_model import ImageModel
from gmmplat.projectors import PROJECTORS

FIXTURE = Path(__file__).parent / "data" / "relion_convention"


def ncc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image normalised cross-correlation of ``(B, M, M)`` arrays -> ``(B,)``."""
    a = a - a.mean(axis=(-2, -1), keepdims=True)
    b = b - b.mean(axis=(-2, -1), keepdims=True)
    return (a * b).sum((-2, -1)) / np.sqrt((a * a).sum((-2, -1)) * (b * b).sum((-2, -1)))


@pytest.fixture(scope="module")
def fixture():
    star = read_particle_star(FIXTURE / "particles.star")
    images = StackReader(star)[:].astype(np.float64)
    consensus = read_map(FIXTURE / "consensus.mrc")
    model = read_model(FIXTURE / "model.pdb", selection="heavy")
    box = consensus.data.shape[0]
    apix = float(consensus.voxel_size_angstrom)
    centre = np.asarray(consensus.origin_angstrom) + (box // 2) * apix  # MRC origin + box centre (voxel M//2)
    xyz = model.xyz_angstrom - centre
    params = torch.zeros(len(xyz), 5, dtype=torch.float64)
    params[:, :3] = torch.as_tensor(xyz)
    params[:, 3] = torch.as_tensor(electron_counts(model.element))
    params[:, 4] = 1.0
    tab = star.table
    A = euler_to_matrix(*[torch.as_tensor(tab[c].to_numpy(dtype=np.float64, copy=True)) for c in ("rot_deg", "tilt_deg", "psi_deg")])
    shifts = torch.as_tensor(tab[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy(dtype=np.float64))
    ctf = CTFParams.from_table(tab)
    return dict(star=star, images=images, consensus=consensus, model=model, xyz=xyz, params=params,
                A=A, shifts=shifts, ctf=ctf, box=box, apix=apix)


def project(f, projector="separable", A=None, shifts=None, ctf=True) -> np.ndarray:
    band = Band(f["box"], f["apix"])
    image_model = ImageModel(band, PROJECTORS.build(projector, band=band))
    A = f["A"] if A is None else A
    shifts = f["shifts"] if shifts is None else shifts
    c = ctf_rfft(f["ctf"], f["box"], f["apix"], band) if ctf else None
    F = image_model.project(f["params"].float(), A.float(), shifts.float(), c)
    return band.band_to_images(F).double().numpy()


def test_fixture_is_what_its_readme_says(fixture):
    assert fixture["images"].shape == (48, 64, 64)
    assert len(fixture["model"]) == 1656
    assert fixture["apix"] == pytest.approx(1.5)
    assert np.abs(fixture["shifts"].numpy()).max() > 5.0  # large shifts: a sign error cannot hide


@pytest.mark.parametrize("projector", ["separable", "dense"])
def test_projection_with_star_conventions_matches_every_image(fixture, projector):
    cc = ncc(project(fixture, projector), fixture["images"])
    assert cc.min() >= 0.98, f"worst image {cc.argmin()}: {cc.min():.3f}"


def test_each_single_convention_reversal_fails(fixture):
    f, images = fixture, fixture["images"]
    good = project(f)
    wrong = {
        "origin sign flipped": project(f, shifts=-f["shifts"]),
        "origin x/y swapped": project(f, shifts=f["shifts"].flip(-1)),
        "image x/y swapped": np.swapaxes(good, -1, -2),
        "rotation transposed": project(f, A=f["A"].transpose(-1, -2)),
        "polarity flipped": -good,
    }
    for name, img in wrong.items():
        cc = ncc(img, images)
        assert cc.mean() <= 0.7, f"{name}: mean CC {cc.mean():.3f} should be <= 0.7"
    # the CTF matters too: without it the images are a low-pass blob of the wrong contrast
    assert ncc(project(f, ctf=False), images).mean() < 0.7


def test_simulator_reproduces_the_fixture_images(fixture):
    from gmmplat.synthetic.simulate import apply_ctf, project_atoms

    f = fixture
    amp = electron_counts(f["model"].element)
    sim = apply_ctf(project_atoms(f["xyz"], amp, f["A"].numpy(), f["shifts"].numpy(), f["box"], f["apix"], 1.0),
                    f["ctf"], f["apix"]).numpy()
    cc = ncc(sim, f["images"])
    assert cc.min() >= 0.99, f"worst image {cc.argmin()}: {cc.min():.4f}"
    flipped = apply_ctf(project_atoms(f["xyz"], amp, f["A"].numpy(), -f["shifts"].numpy(), f["box"], f["apix"], 1.0),
                        f["ctf"], f["apix"]).numpy()
    assert ncc(flipped, f["images"]).mean() <= 0.7


def _peak_offset_voxels(vol: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Sub-voxel shift (z, y, x) that best aligns ``vol`` onto ``ref`` (cross-correlation peak)."""
    xc = np.fft.ifftn(np.fft.fftn(vol) * np.conj(np.fft.fftn(ref))).real
    peak = np.array(np.unravel_index(np.argmax(xc), xc.shape))
    n = np.array(xc.shape)
    out = []
    for ax in range(3):
        idx = [peak.copy() for _ in range(3)]
        idx[0][ax] -= 1
        idx[2][ax] += 1
        ym, y0, yp = (xc[tuple(i % n)] for i in idx)
        frac = 0.5 * (ym - yp) / (ym - 2 * y0 + yp)
        p = peak[ax] + frac
        out.append(p - n[ax] if p > n[ax] / 2 else p)
    return np.array(out)


def test_backprojection_puts_density_where_the_consensus_map_has_it(fixture):
    from gmmplat.analysis.maps import reconstruct

    f = fixture
    vol = reconstruct(torch.as_tensor(f["images"]), f["A"], f["shifts"], f["ctf"], f["apix"], snr=10.0).numpy()
    ref = f["consensus"].data.astype(np.float64)
    offset = _peak_offset_voxels(vol.astype(np.float64), ref)
    assert np.abs(offset).max() < 0.5, f"reconstruction offset {offset} voxels"
    assert np.corrcoef(vol.ravel(), ref.ravel())[0, 1] > 0.5
    flipped = reconstruct(torch.as_tensor(f["images"]), f["A"], -f["shifts"], f["ctf"], f["apix"], snr=10.0).numpy()
    assert np.corrcoef(flipped.ravel(), ref.ravel())[0, 1] < np.corrcoef(vol.ravel(), ref.ravel())[0, 1] - 0.2
