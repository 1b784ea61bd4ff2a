"""What a run's particles were: STAR content hash, particle count, stack sizes, and their identity.

Stored in the run's ``config.json`` (``data_fingerprint``).  ``--resume`` compares all of it,
so a STAR file or stack edited in place is not resumed silently.  The verbs that read a
run together with particles (``select``, ``evaluate --oracle``, ``analyze --reconstruct``,
``refine``) compare the particles' identity only (:func:`check_run_particles`): the count,
a hash of the image names in order (``stack file name@index``: the same after the project
moved) and an order-sensitive sketch of the poses (:func:`pose_sketch`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from ..errors import ConfigError, InputError

#: the option that lets a deliberate other particle set through, with a printed note
ALLOW_OPTION = "--allow-other-particles"
#: sketch entries are O(1); float32 storage (.cs) or text rounding moves them by < 1e-5
SKETCH_TOLERANCE = 1e-3


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def image_names(table) -> list[str]:
    """``name@index`` per particle (stack file name without its folder, 0-based index), in table order."""
    stacks = [os.path.basename(str(s)) for s in table["stack_path"]]
    return [f"{s}@{int(i)}" for s, i in zip(stacks, table["image_index"])]


def pose_sketch(table, k: int = 4) -> list[list[float]]:
    """``(k, 11)``: the rotation matrices (9) and shifts (2, in 10 Å) of all particles, each weighted by
    ``cos(a_j · row + b_j)`` and summed (/ √n).  Other poses or another order change it by O(1);
    the same poses read from a STAR or a .cs file (float32) agree to ~1e-6, hence a sketch, not a hash."""
    from ..geometry import euler_to_matrix

    angles = [table[c].to_numpy(dtype=np.float64, copy=True) for c in ("rot_deg", "tilt_deg", "psi_deg")]
    R = euler_to_matrix(*angles).numpy().reshape(len(table), 9)
    shifts = table[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy(dtype=np.float64) / 10.0
    features = np.concatenate([R, shifts], axis=1)
    row = np.arange(len(table), dtype=np.float64)
    a = math.sqrt(2.0) * (1.0 + np.arange(k))[:, None]  # irrational steps: no two rows share all weights
    weights = np.cos(a * row[None, :] + 0.5 + np.arange(k)[:, None])
    sketch = weights @ features / math.sqrt(max(len(table), 1))
    return [[round(float(v), 7) if math.isfinite(v) else None for v in r] for r in sketch]


def particle_identity(table) -> dict:
    """``{"n_particles", "images_sha256", "images_set_sha256", "poses_sketch"}`` of a particle table."""
    names = image_names(table)
    digest = lambda items: hashlib.sha256("\n".join(items).encode()).hexdigest()  # noqa: E731
    return {"n_particles": int(len(table)), "images_sha256": digest(names),
            "images_set_sha256": digest(sorted(names)), "poses_sketch": pose_sketch(table)}


def data_fingerprint(dataset) -> dict:
    """``{"star", "star_sha256", "n_particles", "stack_bytes": {path: size}}`` and the particles'
    identity (:func:`particle_identity`) of a ParticleDataset."""
    stacks = sorted(set(map(str, dataset.table["stack_path"])))
    return {
        "star": os.path.abspath(dataset.star_path),
        "star_sha256": file_sha256(dataset.star_path),
        "n_particles": int(dataset.n_particles),
        "stack_bytes": {s: (os.path.getsize(s) if os.path.isfile(s) else None) for s in stacks},
        **particle_identity(dataset.table),
    }


def compare_fingerprint(old: dict | None, new: dict, run_dir) -> None:
    """ConfigError naming what changed since the run started (nothing for runs without a fingerprint)."""
    if not old:
        return
    star = new["star"]
    if old.get("n_particles") != new["n_particles"]:
        raise ConfigError(f"cannot resume {run_dir}: {star} held {old.get('n_particles')} particles when the run "
                          f"started, now {new['n_particles']}; start a new run in another folder")
    if old.get("star_sha256") != new["star_sha256"]:
        raise ConfigError(f"cannot resume {run_dir}: {star} changed since the run started (content differs); "
                          "start a new run in another folder")
    for path, size in new["stack_bytes"].items():
        before = old.get("stack_bytes", {}).get(path, size)
        if before != size:
            raise ConfigError(f"cannot resume {run_dir}: stack {path} was {before} bytes when the run started, "
                              f"now {size}; start a new run in another folder")


def recorded_fingerprint(run_dir) -> dict | None:
    """The ``data_fingerprint`` of ``RUN_DIR/config.json``; None for runs without one (older runs, or
    run folders written by hand)."""
    try:
        record = json.loads((open(os.path.join(run_dir, "config.json")).read()))
    except (OSError, ValueError):
        return None
    fp = record.get("data_fingerprint") if isinstance(record, dict) else None
    return fp if isinstance(fp, dict) else None


def identity_differences(recorded: dict, table) -> list[str]:
    """What differs between the recorded particles and ``table`` (empty when they are the same)."""
    n = int(len(table))
    if recorded.get("n_particles") is not None and recorded["n_particles"] != n:
        return [f"{n} particles, the run's {recorded['n_particles']}"]
    if "images_sha256" not in recorded:  # a fingerprint written before identities were recorded
        return []
    new = particle_identity(table)
    if new["images_sha256"] != recorded["images_sha256"]:
        if new["images_set_sha256"] == recorded.get("images_set_sha256"):
            return ["the same images in another order"]
        return ["other images (the image names differ)"]
    old_sketch = np.asarray(recorded.get("poses_sketch") or [], dtype=np.float64)
    new_sketch = np.asarray(new["poses_sketch"], dtype=np.float64)
    if old_sketch.shape != new_sketch.shape or not np.all(np.abs(old_sketch - new_sketch) <= SKETCH_TOLERANCE):
        return ["the same image names with other poses (another dataset, or poses refined again)"]
    return []


def check_run_particles(run_dir, table, particle_path, allow: bool = False) -> str | None:
    """Refuse particles that are not the ones run ``run_dir`` was trained on (one-line InputError naming
    both files); with ``allow`` return the note to print instead.  None when they match (or the run
    recorded no fingerprint)."""
    recorded = recorded_fingerprint(run_dir)
    if not recorded:
        return None
    diffs = identity_differences(recorded, table)
    if not diffs:
        return None
    what = (f"not the particles run {run_dir} was trained on ({recorded.get('star', 'its particle file')}): "
            f"{'; '.join(diffs)}")
    if not allow:
        raise InputError(particle_path, f"{what}; pass {ALLOW_OPTION} to use them anyway")
    return f"{particle_path}: {what}; used anyway ({ALLOW_OPTION})"
