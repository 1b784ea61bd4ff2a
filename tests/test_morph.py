"""Morphing atomic models with the decoded GMM (the model as one more layer of the hierarchy)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.cluster.vq import kmeans2
from scipy.spatial.transform import Rotation

from gmmplat.analysis.morph import (
    ModelMorpher, displacement, per_residue_displacement, write_morphed_models,
)
from gmmplat.errors import ConfigError, InputError
from gmmplat.io.models import read_model
from gmmplat.model.gmm import GMM
from gmmplat.synthetic.motions import get_motion

CENTRE = np.array([100.0, 110.0, 90.0])


@pytest.fixture(scope="module")
def hinge(tmp_path_factory):
    """The hinge sample molecule (world = box frame + CENTRE) and a GMM of k-means centres (≈ 2 residues each)."""
    motion = get_motion("hinge")
    path = tmp_path_factory.mktemp("morph") / "neutral.pdb"
    motion.model.to_structure(motion.model.xyz + CENTRE, name="hinge").write_pdb(str(path))
    model = read_model(path)
    x0 = motion.neutral
    n_g = int(motion.model.ca_mask.sum()) // 2
    centres, label = kmeans2(x0, n_g, seed=1, minit="++")
    keep = np.bincount(label, minlength=n_g) > 0
    domain_atoms = motion.masks["moving_domain"]
    in_domain = np.array([domain_atoms[label == k].mean() > 0.5 for k in range(n_g) if keep[k]])
    gmm = GMM.from_arrays(centres[keep], 1.0, 3.0, 64, 2.0, box_centre_world_angstrom=CENTRE)
    return dict(motion=motion, model=model, gmm=gmm, domain=in_domain, path=path)


def _ca_steps(model, frames):
    ca = model.atom_name == "CA"
    return np.linalg.norm(np.diff(frames[:, ca], axis=1), axis=-1)  # (F, n_ca - 1)


def _hinge_decode_fn(h, max_angle_deg=15.0):
    """Rotate the domain's Gaussians about the sample's hinge axis by ``max_angle_deg · z[0]``."""
    info = h["motion"].info
    point = torch.tensor(info["hinge_point_angstrom"], dtype=torch.float64)
    axis = torch.tensor(info["hinge_axis"], dtype=torch.float64)
    axis = axis / axis.norm()
    neutral = h["gmm"].params.double()
    dom = torch.as_tensor(h["domain"])

    def decode_fn(z):
        out = neutral[None].repeat(z.shape[0], 1, 1)
        for b in range(z.shape[0]):
            R = torch.as_tensor(Rotation.from_rotvec(np.radians(max_angle_deg * float(z[b, 0])) * axis.numpy()).as_matrix())
            out[b, dom, :3] = (neutral[dom, :3] - point) @ R.T + point
        return out.float()

    return decode_fn


@pytest.mark.parametrize("mode", ["local_rigid", "linear"])
def test_translation_moves_every_atom_the_same(hinge, mode):
    morpher = ModelMorpher(hinge["gmm"], hinge["model"], mode=mode)
    shift = torch.tensor([3.0, -2.0, 1.5])

    def decode_fn(z):
        out = hinge["gmm"].params[None].repeat(z.shape[0], 1, 1).clone()
        out[..., :3] += z[:, :1, None] * shift
        return out

    frames = morpher.morph(decode_fn, np.array([[0.0], [1.0], [-2.0]]))
    np.testing.assert_allclose(frames[0], hinge["model"].xyz_angstrom, atol=1e-5)
    np.testing.assert_allclose(frames[1] - frames[0], np.broadcast_to(shift.numpy(), frames[0].shape), atol=1e-4)
    np.testing.assert_allclose(frames[2] - frames[0], np.broadcast_to(-2 * shift.numpy(), frames[0].shape), atol=1e-4)


def test_linear_mode_is_the_transition_matrix(hinge):
    """mode="linear" with every weight kept is exactly atom offsets = Tᵀ · GMM offsets."""
    from gmmplat.neutral.hierarchy import transition_matrix

    gmm, model = hinge["gmm"], hinge["model"]
    morpher = ModelMorpher(gmm, model, s_angstrom=4.0, top_k=gmm.n, mode="linear")
    params = _hinge_decode_fn(hinge)(torch.tensor([[1.0]]))
    T = transition_matrix(gmm.params[:, :3].double().numpy(), model.xyz_angstrom - CENTRE, 4.0)
    expected = model.xyz_angstrom + T.T @ (params[0, :, :3] - gmm.params[:, :3]).double().numpy()
    np.testing.assert_allclose(morpher.morph_params(params)[0], expected, atol=1e-4)


def test_domain_rotation_keeps_ca_distances_and_matches_truth(hinge):
    morpher = ModelMorpher(hinge["gmm"], hinge["model"])
    z = np.linspace(-1, 1, 5)[:, None]
    frames = morpher.morph(_hinge_decode_fn(hinge), z)
    neutral_steps = _ca_steps(hinge["model"], hinge["model"].xyz_angstrom[None])
    assert np.abs(_ca_steps(hinge["model"], frames) - neutral_steps).max() < 0.2
    # the morphed model at the end of the path is the true frame (the sample's own motion)
    ca = hinge["model"].atom_name == "CA"
    true = hinge["motion"].coordinates(1.0) + CENTRE
    rmsd = np.sqrt(np.mean(np.sum((frames[-1][ca] - true[ca]) ** 2, axis=1)))
    neutral_rmsd = np.sqrt(np.mean(np.sum((hinge["model"].xyz_angstrom[ca] - true[ca]) ** 2, axis=1)))
    assert rmsd < 0.3 and neutral_rmsd > 2.0
    d = displacement(frames)
    assert d[hinge["motion"].masks["moving_domain"]].mean() > 4 * d[~hinge["motion"].masks["moving_domain"]].mean()


def test_whole_rotation_keeps_ca_distances(hinge):
    gmm = hinge["gmm"]
    R = torch.as_tensor(Rotation.from_rotvec(np.radians(30) * np.array([0.3, -0.5, 0.81]) / 1.0).as_matrix()).float()
    pivot = torch.tensor([5.0, -3.0, 2.0])

    def decode_fn(z):
        out = gmm.params[None].repeat(z.shape[0], 1, 1).clone()
        out[1:, :, :3] = (gmm.params[:, :3] - pivot) @ R.T + pivot
        return out

    frames = ModelMorpher(gmm, hinge["model"]).morph(decode_fn, np.zeros((2, 1)))
    steps = _ca_steps(hinge["model"], frames)
    assert np.abs(steps[1] - steps[0]).max() < 0.2
    # every atom moved rigidly: all pairwise distances of a sample of atoms are kept
    sel = np.arange(0, frames.shape[1], 17)
    d0 = np.linalg.norm(frames[0, sel, None] - frames[0, None, sel], axis=-1)
    d1 = np.linalg.norm(frames[1, sel, None] - frames[1, None, sel], axis=-1)
    assert np.abs(d1 - d0).max() < 0.2


def test_model_outside_the_gmm_is_a_one_line_error(hinge, tmp_path):
    motion = hinge["motion"]
    path = tmp_path / "far.pdb"
    motion.model.to_structure(motion.model.xyz + CENTRE + [200.0, 0.0, 0.0]).write_pdb(str(path))
    with pytest.raises(InputError, match=r"does not overlap the GMM.*offset by \((19|20)\d\.\d, -?\d\.\d, -?\d\.\d\) Å") as e:
        ModelMorpher(hinge["gmm"], read_model(path))
    assert "\n" not in str(e.value) and "far.pdb" in str(e.value)
    with pytest.raises(ConfigError, match="unknown morph mode"):
        ModelMorpher(hinge["gmm"], hinge["model"], mode="spline")


def test_write_and_report(hinge, tmp_path):
    from gmmplat.analysis.evaluate import read_model_frames
    from gmmplat.analysis.plots import displacement_histogram_png, per_residue_png

    morpher = ModelMorpher(hinge["gmm"], hinge["model"])
    frames = morpher.morph(_hinge_decode_fn(hinge), np.linspace(-1, 1, 3)[:, None])
    paths = write_morphed_models(tmp_path / "traj.pdb", hinge["model"], frames)
    assert [p.suffix for p in paths] == [".pdb", ".cif"]
    for p in paths:
        back = read_model_frames(p)
        assert back.shape == frames.shape
        np.testing.assert_allclose(back, frames, atol=2e-3)
    res = per_residue_displacement(hinge["model"], displacement(frames))
    assert len(res) == hinge["motion"].model.n_residues
    assert set(res.columns) >= {"chain_id", "residue_number", "mean_displacement_angstrom", "max_displacement_angstrom"}
    displacement_histogram_png(tmp_path / "h.png", displacement(frames))
    per_residue_png(tmp_path / "r.png", res)
    assert (tmp_path / "h.png").stat().st_size > 1000 and (tmp_path / "r.png").stat().st_size > 1000


def test_reference_latent_is_a_smoothed_median():
    """The morph's reference point: per dimension the mean of the central 20 % of the points (by hand),
    unmoved by the outer points, and steady where a plain median jumps between clusters."""
    from gmmplat.analysis.morph_reference import reference_latent

    rng = np.random.default_rng(0)
    z = rng.normal(size=(1000, 2)) * [1.0, 3.0] + [0.5, -2.0]
    want = [np.sort(z[:, j])[400:600].mean() for j in range(2)]  # points 401-600 of 1000 in each dimension
    np.testing.assert_allclose(reference_latent(z), want, rtol=1e-12)
    far = z.copy()
    order = np.argsort(z[:, 0])
    far[order[:300], 0] -= 50.0  # the lower 30 % moved far out: the central fifth keeps its points
    far[order[-300:], 0] += 80.0
    np.testing.assert_allclose(reference_latent(far)[0], want[0], rtol=1e-12)
    # points gathered at anchors (a refined latent): two clusters, at -0.1 and +0.1, the middle point
    # in the upper one.  Two points moving across carry the plain median over to the lower one.
    clusters = np.repeat([-0.1, 0.1], [499, 501])[:, None]
    moved = np.repeat([-0.1, 0.1], [501, 499])[:, None]
    plain = np.median(clusters, 0)[0], np.median(moved, 0)[0]
    smooth = reference_latent(clusters)[0], reference_latent(moved)[0]
    assert plain == (0.1, -0.1)
    assert abs(smooth[1] - smooth[0]) < 0.01 and abs(smooth[0]) < 0.01
    # copy 0 of a symmetry-expanded latent (n, K, d)
    np.testing.assert_allclose(reference_latent(np.stack([z, z + 5.0], 1)), want, rtol=1e-12)
