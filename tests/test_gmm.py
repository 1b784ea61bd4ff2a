import math

import numpy as np
import pytest
import torch

from factories import random_gmm
from gmmplat.errors import InputError
from gmmplat.model.gmm import GMM, render_map


def realspace_map(params, box, apix):
    p = params.double().numpy()
    g = (np.arange(box) - box // 2) * apix
    vol = np.zeros((box, box, box))
    for (x, y, z, a, s) in p:
        ex, ey, ez = (np.exp(-((g - c) ** 2) / (2 * s * s)) for c in (x, y, z))
        vol += a * ez[:, None, None] * ey[None, :, None] * ex[None, None, :]
    return vol


@pytest.mark.parametrize("box", [32, 33])
def test_render_map_equals_realspace_sum(box):
    apix = 1.5
    # Gaussians ≥ 1.5 px wide and ≥ 5 σ from the box edge: no aliasing, no wrap-around
    params = random_gmm(25, box, apix, seed=box, sigma_px=(1.5, 2.0), extent=0.15)
    ours = render_map(params, box, apix).double().numpy()
    ref = realspace_map(params, box, apix)
    assert np.abs(ours - ref).max() < 1e-4 * ref.max()


def test_render_map_axis_order_is_zyx():
    params = torch.tensor([[6.0, -4.0, 2.0, 1.0, 2.0]])  # x, y, z in Å
    vol = render_map(params, 32, 2.0).numpy()
    k, j, i = np.unravel_index(np.argmax(vol), vol.shape)
    assert (i, j, k) == (16 + 3, 16 - 2, 16 + 1)


def test_save_load_roundtrip(tmp_path):
    params = random_gmm(7, 32, 2.0)
    g = GMM(params, 32, 2.0, np.array([10.0, 20.0, 30.0]),
            {"bonds": np.array([[0, 1], [1, 2]]), "mask__domain": np.arange(7) > 3})
    path = tmp_path / "g.npz"
    g.save(path)
    h = GMM.load(path)
    assert torch.equal(h.params, g.params) and h.box == 32 and h.pixel_size_angstrom == 2.0
    assert np.array_equal(h.extras["bonds"], g.extras["bonds"])
    assert list(h.masks()) == ["domain"] and h.masks()["domain"].sum() == 3
    assert np.allclose(h.world_xyz_angstrom(), params[:, :3].numpy() + [10, 20, 30], atol=1e-5)
    assert not list(tmp_path.glob("*.tmp*"))


def test_load_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        GMM.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz"):
        GMM.load(bad)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.zeros(3))
    with pytest.raises(InputError, match="not a gmmplat GMM"):
        GMM.load(other)


def test_model_map_model_roundtrip(tmp_path):
    """A model placed in world coordinates, a map written with a non-zero header origin, and the
    GMM built by subtracting the box centre: the rendered map, read back, has its density centre
    on the model's centroid in world coordinates, and GMM + box centre returns the model."""
    import gemmi

    from gmmplat.io.models import read_model
    from gmmplat.io.mrc import box_centre_world_angstrom, read_map, write_map

    box, apix = 40, 2.0
    origin = np.array([57.0, -23.0, 110.0])
    centre = origin + (box // 2) * apix
    rng = np.random.default_rng(3)
    xyz_world = centre + rng.uniform(-12, 12, size=(20, 3)) + np.array([3.0, -2.0, 5.0])
    st = gemmi.Structure()
    model, chain = gemmi.Model("1"), gemmi.Chain("A")
    for i, p in enumerate(xyz_world):
        res = gemmi.Residue()
        res.name, res.seqid = "ALA", gemmi.SeqId(i + 1, " ")
        atom = gemmi.Atom()
        atom.name, atom.element, atom.pos = "CA", gemmi.Element("C"), gemmi.Position(*p)
        res.add_atom(atom)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    st.write_pdb(str(tmp_path / "m.pdb"))

    atoms = read_model(tmp_path / "m.pdb")
    empty = tmp_path / "empty.mrc"
    write_map(empty, np.zeros((box, box, box), np.float32), apix, origin)
    c = box_centre_world_angstrom(read_map(empty))
    assert np.allclose(c, centre)
    gmm = GMM.from_arrays(atoms.xyz_angstrom - c, 1.0, 3.0, box, apix, box_centre_world_angstrom=c)
    assert np.allclose(gmm.world_xyz_angstrom(), xyz_world, atol=1e-3)

    write_map(tmp_path / "gmm.mrc", render_map(gmm.params, box, apix).numpy(), apix, origin)
    m = read_map(tmp_path / "gmm.mrc")
    zz, yy, xx = np.meshgrid(*(np.arange(box),) * 3, indexing="ij")
    w = m.data / m.data.sum()
    com_world = m.origin_angstrom + apix * np.array([(w * xx).sum(), (w * yy).sum(), (w * zz).sum()])
    assert np.allclose(com_world, xyz_world.mean(0), atol=0.05)
