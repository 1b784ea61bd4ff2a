"""A run's particles are its identity: every verb that reads a run together with particles compares them
with the run's recorded ``data_fingerprint`` (count, image names in order, poses), through the real CLI.

One real run (``gmmplat train``, 1 epoch) on a tiny simulated dataset; then, per verb: the STAR
reordered in place, another dataset of the same size, and a .cs of the same particles with its
uid order changed are refused with one line naming both files, and ``--allow-other-particles``
lets each through with the difference printed.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from factories import assert_cli_error, cs_ctf_fields, save_cs_records
from scipy.spatial.transform import Rotation

from gmmplat import cli
from gmmplat.io.star import read_particle_star
from gmmplat.synthetic.simulate import simulate_dataset

TINY = dict(n_particles=24, box=32, pixel_size_angstrom=4.0, images_per_stack=24, n_consensus=3, progress=False,
            snr=1.0)


def call(capsys, verb, *argv):
    code = cli.main([verb, *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def neutral_gmm(dataset: Path) -> Path:
    """A GMM of the hinge molecule's Cα atoms (two per Gaussian) with the moving domain's mask."""
    from scipy.cluster.vq import kmeans2

    from gmmplat.model.gmm import GMM
    from gmmplat.synthetic.motions import get_motion

    meta = json.loads((dataset / "metadata.json").read_text())
    motion = get_motion("hinge")
    x0 = motion.neutral[motion.model.ca_mask]
    centres, label = kmeans2(x0, len(x0) // 2, seed=1, minit="++")
    keep = np.bincount(label, minlength=len(centres)) > 0
    dom_atoms = motion.masks["moving_domain"][motion.model.ca_mask]
    dom = np.array([dom_atoms[label == k].mean() > 0.5 for k in range(len(centres)) if keep[k]])
    GMM.from_arrays(centres[keep], 1.0, 4.0, TINY["box"], TINY["pixel_size_angstrom"],
                    box_centre_world_angstrom=np.asarray(meta["box_centre_world_angstrom"]),
                    extras={"mask__moving_domain": dom}).save(dataset / "gmm.npz")
    return dataset / "gmm.npz"


def write_cs(star: Path, path: Path, order=None) -> Path:
    """The STAR file's particles as a cryoSPARC .cs (records in ``order``), the stack beside it by name."""
    t = read_particle_star(star).table
    order = np.arange(len(t)) if order is None else np.asarray(order)
    t = t.iloc[order].reset_index(drop=True)
    A = Rotation.from_euler("ZYZ", t[["rot_deg", "tilt_deg", "psi_deg"]].to_numpy(), degrees=True).as_matrix()
    fields = {  # RELION's A is scipy's ZYZ matrix transposed; cryoSPARC: A = expmap(pose)ᵀ
        "uid": (np.uint64, order.astype(np.uint64) * 7919 + 11),
        "blob/path": ("S200", np.array([str(p).encode() for p in t["stack_path"]])),
        "blob/idx": (np.uint32, t["image_index"].to_numpy()),
        "blob/shape": ((np.uint32, 2), np.tile([TINY["box"]] * 2, (len(t), 1))),
        "blob/psize_A": (np.float32, t["pixel_size_angstrom"].to_numpy()),
        "alignments3D/pose": ((np.float32, 3), Rotation.from_matrix(A).as_rotvec()),
        "alignments3D/shift": ((np.float32, 2), t[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy() / 4.0),
        **cs_ctf_fields(t),
    }
    save_cs_records(path, fields, len(t))
    return path


def reordered_star(src: Path, dst: Path) -> Path:
    """The STAR file with its particle lines in reverse order (every other line kept as written)."""
    lines = src.read_text().splitlines(keepends=True)
    rows = [i for i, line in enumerate(lines) if "@" in line and not line.lstrip().startswith(("_", "#"))]
    body = [lines[i] for i in rows][::-1]
    out = list(lines)
    for i, line in zip(rows, body):
        out[i] = line
    dst.write_text("".join(out))
    return dst


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Dataset ``a`` with a trained run, dataset ``b`` of the same size (another seed)."""
    root = tmp_path_factory.mktemp("fingerprint")
    simulate_dataset("hinge", root / "a", seed=1, **TINY)
    simulate_dataset("hinge", root / "b", seed=2, **TINY)
    gmm = neutral_gmm(root / "a")
    argv = ["--star", root / "a" / "particles.star", "--gmm", gmm, "--preset", "rigid", "--domain", "moving_domain",
            "--epochs", "1", "--batch-size", "8", "--refine-anchors", "2", "--skip-data-check", "--no-progress",
            "--out", root / "run"]
    assert cli.main(["train", *map(str, argv)]) == 0
    return root


def test_train_records_the_identity(sim):
    fp = json.loads((sim / "run" / "config.json").read_text())["data_fingerprint"]
    assert fp["n_particles"] == 24 and len(fp["images_sha256"]) == 64 and np.shape(fp["poses_sketch"]) == (4, 11)


def test_the_same_particles_as_cs_are_the_same(sim, tmp_path):
    """The identity survives the format: the run's particles written as a .cs (float32 poses) match."""
    from gmmplat.io.cryosparc import read_particle_cs
    from gmmplat.records import check_run_particles

    cs = read_particle_cs(write_cs(sim / "a" / "particles.star", tmp_path / "same.cs"))
    assert check_run_particles(sim / "run", cs.table, cs.path) is None


# ------------------------------------------------------------------ the other particle sets
class Other:
    """Builds the other particle sets against the run ``sim/run`` (copied to ``tmp`` per test)."""

    def __init__(self, sim: Path, tmp: Path):
        self.sim, self.tmp = sim, tmp
        self.star = sim / "a" / "particles.star"
        self.run = tmp / "run"
        shutil.copytree(sim / "run", self.run)
        self._saved = None

    def reorder_in_place(self) -> Path:
        """The run's own STAR file, its particle lines reversed (restored by :meth:`restore`)."""
        self._saved = self.star.read_text()
        reordered_star(self.star, self.star)
        return self.star

    def replace_in_place(self) -> Path:
        """The run's own STAR file replaced by the other dataset's particles (same size)."""
        from gmmplat.io.star import TABLE_COLUMNS, write_particle_star

        self._saved = self.star.read_text()
        write_particle_star(self.star, read_particle_star(self.sim / "b" / "particles.star").table[TABLE_COLUMNS])
        return self.star

    def restore(self) -> None:
        if self._saved is not None:
            self.star.write_text(self._saved)

    def reordered_copy(self) -> Path:
        return reordered_star(self.star, self.sim / "a" / "reordered.star")

    def other_dataset(self) -> Path:
        return self.sim / "b" / "particles.star"

    def cs_other_uid_order(self) -> Path:
        order = np.roll(np.arange(24), 5)
        return write_cs(self.star, self.sim / "a" / "rolled.cs", order)


#: (particle set, what the note names) for the verbs that take --star/--cs
GIVEN = {"reordered": (lambda o: ["--star", o.reordered_copy()], "the same images in another order"),
         # simulated datasets name their stacks alike: the poses tell them apart
         "other-dataset": (lambda o: ["--star", o.other_dataset()], "the same image names with other poses"),
         "cs-uid-order": (lambda o: ["--cs", o.cs_other_uid_order()], "the same images in another order")}


@pytest.fixture
def other(sim, tmp_path):
    o = Other(sim, tmp_path)
    yield o
    o.restore()


def _refused(code, err, verb, particle_file, star):
    assert_cli_error(code, err, verb, str(particle_file), str(star), "--allow-other-particles",
                     "not the particles run")


def _let_through(code, out, err, particle_file, what):
    assert code == 0, err
    notes = [line for line in out.splitlines() if "used anyway (--allow-other-particles)" in line]
    assert len(notes) == 1 and notes[0].startswith(f"note: {particle_file}: not the particles run") and what in notes[0]


def _case(case: str, other) -> tuple[list, str, Path]:
    """``(particle options, the difference the note names, the particle file)`` of a GIVEN case or ``in-place``."""
    if case == "in-place":
        return [], "the same images in another order", other.reorder_in_place()
    make, what = GIVEN[case]
    src = make(other)
    return src, what, Path(src[1])


@pytest.mark.parametrize("case", [*GIVEN, "in-place"])
def test_select(case, other, capsys):
    src, what, particle_file = _case(case, other)
    out = other.tmp / "sub.star"
    argv = ["--run", other.run, "--indices", _rows(other.tmp), "--out", out, *src]
    code, _, err = call(capsys, "select", *argv)
    _refused(code, err, "select", particle_file, other.star)
    assert not out.exists()
    code, text, err = call(capsys, "select", *argv, "--allow-other-particles")
    _let_through(code, text, err, particle_file, what)
    assert out.is_file()


def _rows(tmp: Path) -> Path:
    np.save(tmp / "rows.npy", np.arange(3))
    return tmp / "rows.npy"


@pytest.mark.parametrize("case", [*GIVEN, "in-place"])
def test_analyze_reconstruct(case, other, capsys):
    src, what, particle_file = _case(case, other)
    out = other.tmp / "analysis"
    argv = ["--run", other.run, "--out", out, "--pcs", "1", "--frames", "2", "--reconstruct", "3", "--no-progress",
            *src]
    code, _, err = call(capsys, "analyze", *argv)
    _refused(code, err, "analyze", particle_file, other.star)
    assert not out.exists()
    code, text, err = call(capsys, "analyze", *argv, "--allow-other-particles")
    _let_through(code, text, err, particle_file, what)
    assert (out / "recon" / "pc1_frame01.mrc").is_file()


@pytest.mark.parametrize("case", [*GIVEN, "in-place", "other-dataset-in-place"])
def test_refine(case, other, capsys):
    """refine reads the run's own particle file, or one given with --star/--cs: edited in place after
    training, or another set, it is refused."""
    src = []
    if case == "in-place":
        particle_file, what = other.reorder_in_place(), "the same images in another order"
    elif case == "other-dataset-in-place":
        particle_file, what = other.replace_in_place(), "other poses"
    else:
        src, what, particle_file = _case(case, other)
    latent = other.run / "latent.npy"
    stamp = latent.stat().st_mtime_ns
    argv = ["--run", other.run, "--anchors", "2", "--no-progress", *src]
    code, _, err = call(capsys, "refine", *argv)
    _refused(code, err, "refine", particle_file, other.star)
    assert latent.stat().st_mtime_ns == stamp
    code, text, err = call(capsys, "refine", *argv, "--allow-other-particles")
    _let_through(code, text, err, particle_file, what)
    assert latent.stat().st_mtime_ns != stamp


def test_refine_on_a_file_given_by_name(other, capsys):
    """The run's pose corrections belong to the poses of its own particle file: applied to it whether it is
    named with --star or not, and not to another file (here a copy of it: the same particles, no note)."""
    argv = ["--run", other.run, "--anchors", "2", "--no-progress", "--threads", "1"]
    assert call(capsys, "refine", *argv)[0] == 0
    stated = np.load(other.run / "quality.npy")  # the fit at the poses used (the latent may stay the encoder's)
    corrections = np.zeros((24, 5))
    corrections[:, 0], corrections[:, 3] = 8.0, 3.0  # degrees about x, Å along x
    np.save(other.run / "pose_correction.npy", corrections)
    code, text, err = call(capsys, "refine", *argv)
    assert code == 0, err
    assert "the poses corrected by the run's cycles" in text
    corrected = np.load(other.run / "quality.npy")
    assert not np.array_equal(corrected, stated)
    code, text, err = call(capsys, "refine", *argv, "--star", other.star)
    assert code == 0, err
    assert "the poses corrected by the run's cycles" in text
    np.testing.assert_array_equal(np.load(other.run / "quality.npy"), corrected)
    copy = other.sim / "a" / "copy.star"
    shutil.copyfile(other.star, copy)
    code, text, err = call(capsys, "refine", *argv, "--star", copy)
    assert code == 0, err
    assert "note:" not in text and "pose_correction.npy belongs to its own particle file" in text
    np.testing.assert_array_equal(np.load(other.run / "quality.npy"), stated)


@pytest.mark.parametrize("case", ["other-dataset", "reordered"])
def test_evaluate_oracle(case, other, capsys):
    if case == "other-dataset":
        dataset, what = other.sim / "b", "other poses"
    else:
        dataset, what = other.tmp / "a_reordered", "the same images in another order"
        shutil.copytree(other.sim / "a", dataset, ignore=shutil.ignore_patterns("*.mrcs", "stacks"))
        for stacks in (other.sim / "a").glob("**/*.mrcs"):  # the stacks by link: only the STAR changes
            target = dataset / stacks.relative_to(other.sim / "a")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(stacks)
        reordered_star(other.sim / "a" / "particles.star", dataset / "particles.star")
    particle_file = dataset / "particles.star"
    argv = ["--oracle", dataset, "--run", other.run, "--oracle-particles", "6", "--k", "3"]
    code, _, err = call(capsys, "evaluate", *argv)
    _refused(code, err, "evaluate", particle_file, other.star)
    assert not (other.run / "scores.json").exists() and not (dataset / "oracle.json").exists()
    code, text, err = call(capsys, "evaluate", *argv, "--allow-other-particles")
    _let_through(code, text, err, particle_file, what)
    assert (other.run / "scores.json").is_file()


def test_evaluate_oracle_on_the_runs_own_dataset_needs_no_option(other, capsys):
    code, _, err = call(capsys, "evaluate", "--oracle", other.sim / "a", "--run", other.run, "--oracle-particles", "6",
                        "--k", "3")
    assert code == 0 and "note" not in err, err


def test_morph_reads_no_particles(other, capsys):
    """morph (like evaluate --truth) reads no particle file: a STAR reordered after training changes nothing."""
    other.reorder_in_place()
    code, out, err = call(capsys, "morph", "--run", other.run, "--model", other.sim / "a" / "neutral_model.pdb",
                          "--out", other.tmp / "m.pdb", "--frames", "2")
    assert code == 0 and "note" not in out, err


def test_refine_high_res_coarser_than_the_box_names_the_coarsest_value(other, capsys):
    latent = other.run / "latent.npy"
    stamp = latent.stat().st_mtime_ns
    code, _, err = call(capsys, "refine", "--run", other.run, "--high-res", "200", "--no-progress")
    assert_cli_error(code, err, "refine", "--high-res 200 Å", "the coarsest usable value is 128 Å")
    assert latent.stat().st_mtime_ns == stamp
    code, _, err = call(capsys, "refine", "--run", other.run, "--high-res", "128", "--anchors", "2", "--no-progress")
    assert code == 0, err
