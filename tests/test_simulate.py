"""The particle simulator (gmmplat.synthetic.simulate) and the ``gmmplat simulate`` verb."""
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from gmmplat import cli
from gmmplat.errors import ConfigError
from gmmplat.io.models import read_model
from gmmplat.io.mrc import box_centre_world_angstrom, read_map
from gmmplat.io.stacks import StackReader
from gmmplat.io.star import read_particle_star
from gmmplat.physics.ctf import CTFParams, ctf_rfft
from gmmplat.physics.fourier import image_to_rfft, rfft_to_image
from gmmplat.physics.geometry import euler_to_matrix
from gmmplat.synthetic.motions import get_motion
from gmmplat.synthetic.simulate import apply_ctf, nearest_frame, project_atoms, render_volume, simulate_dataset

SMALL = dict(n_particles=20, box=32, pixel_size_angstrom=4.0, images_per_stack=8, n_consensus=5, progress=False)
FILES = ["particles.star", "consensus_map.mrc", "neutral_model.pdb", "truth.csv", "truth_frames.pdb",
         "masks.json", "metadata.json"]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """A noise-free hinge dataset (seed 0)."""
    out = tmp_path_factory.mktemp("sim") / "clean"
    simulate_dataset("hinge", out, snr=math.inf, seed=0, **SMALL)
    return out


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    """The same dataset with noise at SNR 0.05."""
    out = tmp_path_factory.mktemp("sim") / "noisy"
    simulate_dataset("hinge", out, snr=0.05, seed=0, **SMALL)
    return out


def _ctf(tab):
    keys = ("defocus_u_angstrom", "defocus_v_angstrom", "defocus_angle_deg", "voltage_kv", "cs_mm",
            "amplitude_contrast")
    return CTFParams.from_values(len(tab), **{k: np.array(tab[k], dtype=float) for k in keys})


def _images(folder):
    star = read_particle_star(folder / "particles.star")
    return star, StackReader(star)[:]


def test_single_atom_lands_on_the_hand_computed_pixel():
    # rot=90, tilt=psi=0: A = Rz(90) passive = [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], so (10, 0, 0) -> (0, -10);
    # RELION: the image is the projection translated by -origin (4, -2): centre (-4, -8) Å -> pixel x = 16 - 2, y = 16 - 4.
    A = euler_to_matrix(torch.tensor([90.0]), torch.tensor([0.0]), torch.tensor([0.0])).numpy()
    img = project_atoms(np.array([[10.0, 0.0, 0.0]]), np.array([6.0]), A, np.array([[4.0, -2.0]]), 32, 2.0, 2.0)[0]
    assert np.unravel_index(np.argmax(img), img.shape) == (12, 14)
    assert img.max() == pytest.approx(6.0 * math.sqrt(2 * math.pi) * 2.0)  # line integral of the 3D Gaussian
    assert img.sum() * 2.0**2 == pytest.approx(6.0 * (2 * math.pi) ** 1.5 * 2.0**3, rel=1e-6)  # total mass


def test_ctf_keeps_a_centred_atom_centred():
    img = project_atoms(np.zeros((1, 3)), np.array([8.0]), np.eye(3)[None], np.zeros((1, 2)), 32, 2.0, 3.0)
    ctf = CTFParams.from_values(1, defocus_u_angstrom=15000.0, defocus_v_angstrom=14800.0, defocus_angle_deg=30.0,
                                voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    out = apply_ctf(img, ctf, 2.0)[0].numpy()
    off = project_atoms(np.array([[7.0, -3.0, 1.0]]), np.array([8.0]), np.eye(3)[None], np.array([[1.0, 2.0]]),
                        32, 2.0, 3.0)
    centred = rfft_to_image(image_to_rfft(torch.as_tensor(off)) * ctf_rfft(ctf, 32, 2.0), 32).numpy()
    assert np.allclose(apply_ctf(off, ctf, 2.0).numpy(), centred, atol=1e-9 * np.abs(centred).max())
    assert np.unravel_index(np.argmax(np.abs(out)), out.shape) == (16, 16)
    mirrored = np.roll(np.flip(out), 1, axis=(0, 1))  # out[32 - i, 32 - j]: point symmetry about pixel (16, 16)
    assert np.allclose(out, mirrored, atol=1e-6 * np.abs(out).max())


def test_render_volume_peak_and_axes():
    vol = render_volume(np.array([[6.0, -4.0, 2.0]]), np.array([7.0]), 16, 2.0, 2.0)
    assert np.unravel_index(np.argmax(vol), vol.shape) == (8 + 1, 8 - 2, 8 + 3)  # [z, y, x]
    assert vol.max() == pytest.approx(7.0, rel=1e-5)


def test_files_and_row_counts(clean):
    for name in FILES:
        assert (clean / name).is_file(), name
    stacks = sorted((clean / "stacks").glob("*.mrcs"))
    assert [p.name for p in stacks] == ["particles_000.mrcs", "particles_001.mrcs", "particles_002.mrcs"]
    star, images = _images(clean)
    truth = pd.read_csv(clean / "truth.csv")
    assert len(star.table) == len(images) == len(truth) == 20 and star.version == "3.1"
    assert list(truth.columns) == ["particle_index", "t", "frame", "junk", "junk_kind", "bfactor_angstrom2", "scale",
                                   "rot_deg", "tilt_deg", "psi_deg", "shift_x_angstrom", "shift_y_angstrom"]
    assert (truth.junk == 0).all() and (truth.scale == 1).all() and (truth.bfactor_angstrom2 == 0).all()
    assert np.array_equal(truth.particle_index, np.arange(20)) and truth.t.between(-1, 1).all()
    assert np.array_equal(truth.frame, nearest_frame(truth.t.to_numpy(), 11))
    assert star.table.stack_path.nunique() == 3 and star.table.image_index.max() == 7
    assert np.allclose(star.table.pixel_size_angstrom, 4.0) and (star.table.box_size == 32).all()
    assert star.table.shift_x_angstrom.abs().max() <= 4.0 and star.table.shift_x_angstrom.std() > 0
    meta = json.loads((clean / "metadata.json").read_text())
    assert meta["complete"] and meta["seed"] == 0 and "variance" in meta["snr_definition"]
    newest = max((clean / n).stat().st_mtime_ns for n in FILES[:-1])
    assert (clean / "metadata.json").stat().st_mtime_ns >= newest  # written last
    masks = json.loads((clean / "masks.json").read_text())["masks"]
    sel = read_model(clean / "neutral_model.pdb", residues=masks["moving_domain"]["selection"])
    assert len(sel) == int(get_motion("hinge").domain_mask.sum())


def test_star_and_images_agree_exactly(clean):
    """Re-render the noise-free stack from the STAR file's values and the truth t."""
    star, images = _images(clean)
    tab = star.table
    truth = pd.read_csv(clean / "truth.csv")
    motion = get_motion("hinge")
    A = euler_to_matrix(*(np.array(tab[c], dtype=float) for c in ("rot_deg", "tilt_deg", "psi_deg"))).numpy()
    shifts = tab[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy()
    proj = project_atoms(motion.coordinates_batch(truth.t.to_numpy()), motion.model.electrons, A, shifts, 32, 4.0, 3.0)
    expected = apply_ctf(proj, _ctf(tab), 4.0).numpy()
    assert np.allclose(images, expected, atol=1e-5 * np.abs(expected).max())
    wrong = apply_ctf(project_atoms(motion.coordinates_batch(truth.t.to_numpy()), motion.model.electrons,
                                    np.swapaxes(A, 1, 2), shifts, 32, 4.0, 3.0), _ctf(tab), 4.0).numpy()
    assert not np.allclose(images, wrong, atol=0.05 * np.abs(expected).max())  # Aᵀ does not agree


def test_measured_snr(clean, noisy):
    _, signal = _images(clean)
    _, images = _images(noisy)
    noise = images.astype(np.float64) - signal
    measured = signal.astype(np.float64).var(axis=(1, 2)).mean() / noise.var()
    assert measured == pytest.approx(0.05, rel=0.1)
    assert abs(noise.mean()) < 0.05 * noise.std()


def test_deterministic_for_a_seed(tmp_path, noisy):
    simulate_dataset("hinge", tmp_path / "again", snr=0.05, seed=0, **SMALL)
    for name in ["particles.star", "truth.csv", "stacks/particles_000.mrcs", "stacks/particles_002.mrcs",
                 "truth_frames.pdb", "neutral_model.pdb", "masks.json"]:
        assert (tmp_path / "again" / name).read_bytes() == (noisy / name).read_bytes(), name
    maps = [read_map(folder / "consensus_map.mrc").data for folder in (tmp_path / "again", noisy)]
    assert np.array_equal(*maps)
    simulate_dataset("hinge", tmp_path / "other", snr=0.05, seed=1, **SMALL)
    first = "stacks/particles_000.mrcs"
    assert (tmp_path / "other" / first).read_bytes() != (noisy / first).read_bytes()
    assert not pd.read_csv(tmp_path / "other" / "truth.csv").t.equals(pd.read_csv(noisy / "truth.csv").t)


def test_invert_contrast(tmp_path, clean):
    simulate_dataset("hinge", tmp_path / "inv", snr=math.inf, seed=0, invert_contrast=True, **SMALL)
    assert np.array_equal(_images(tmp_path / "inv")[1], -_images(clean)[1])


def test_map_origin_and_model_agree(clean):
    cmap = read_map(clean / "consensus_map.mrc")
    meta = json.loads((clean / "metadata.json").read_text())
    assert np.allclose(box_centre_world_angstrom(cmap), [100.0, 110.0, 90.0])
    assert np.allclose(cmap.origin_angstrom, np.array([100.0, 110.0, 90.0]) - 16 * 4.0)
    assert np.allclose(meta["map_origin_angstrom"], cmap.origin_angstrom)
    model = read_model(clean / "neutral_model.pdb")
    electrons = np.array([{"C": 6, "N": 7, "O": 8, "S": 16}[e] for e in model.element], dtype=float)
    model_centre = (electrons[:, None] * model.xyz_angstrom).sum(0) / electrons.sum()
    z, y, x = np.indices(cmap.data.shape)
    w = cmap.data.astype(np.float64)
    density_centre = cmap.origin_angstrom + cmap.voxel_size_angstrom * np.array(
        [(w * x).sum(), (w * y).sum(), (w * z).sum()]) / w.sum()
    assert np.linalg.norm(model_centre - density_centre) < 1.0
    frames = read_model(clean / "truth_frames.pdb")  # first model: t = -1
    assert np.allclose(frames.xyz_angstrom, get_motion("hinge").coordinates(-1.0) + [100, 110, 90], atol=1e-3)


def test_bad_options_raise_config_errors(tmp_path):
    for bad in (dict(box=31), dict(snr=0.0), dict(n_particles=0), dict(sigma_angstrom=-1.0), dict(seed=-3),
                dict(box=32, pixel_size_angstrom=2.0)):
        with pytest.raises(ConfigError) as err:
            simulate_dataset("hinge", tmp_path / "bad", **{**SMALL, **bad})
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        simulate_dataset("wiggle", tmp_path / "bad")


def test_cli(tmp_path, capsys):
    rc = cli.main(["simulate", "bend", "--out", str(tmp_path), "--n-particles", "6", "--box", "32",
                   "--pixel-size", "4", "--images-per-stack", "4", "--quiet", "--seed", "2"])
    assert rc == 0 and (tmp_path / "bend" / "metadata.json").is_file()
    assert "bend: 6 particles in 2 stack(s)" in capsys.readouterr().out
    assert cli.main(["simulate", "bend", "--out", str(tmp_path), "--box", "30", "--overwrite"]) == 2
    assert "--box" in capsys.readouterr().err
    assert (tmp_path / "bend" / "metadata.json").is_file()  # the refused run left the dataset as it was
