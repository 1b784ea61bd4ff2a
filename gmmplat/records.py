"""The records a run folder holds, as read after training: its latent, its environment and its particles.

The trainer writes these files and the analysis, the fixed-latent encoder and the verbs that read a
run with particles read them; both sides import this module, which imports neither.
The particles' identity (:func:`check_run_particles`): the count, a hash of the image names in
order (``stack file name@index``: the same after the project moved) and an order-sensitive
sketch of the poses (:func:`pose_sketch`), stored in ``config.json`` (``data_fingerprint``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from .errors import InputError

#: the option that lets a deliberate other particle set through, with a printed note
ALLOW_OPTION = "--allow-other-particles"
#: sketch entries are O(1); float32 storage (.cs) or text rounding moves them by < 1e-5
SKETCH_TOLERANCE = 1e-3


def read_latent(path: str | os.PathLike) -> np.ndarray:
    """A latent array from a ``.npy`` file; a one-line :class:`InputError` naming the file when it is missing,
    a folder, unreadable, not numbers or not finite."""
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder, not a latent array (.npy)")
    if not path.is_file():
        raise InputError(path, "latent file not found")
    try:
        latent = np.load(path, allow_pickle=False)
    except (ValueError, EOFError):  # text, pickles, truncated headers
        raise InputError(path, "not a latent array (not a readable .npy file)") from None
    if not isinstance(latent, np.ndarray) or latent.dtype.kind not in "fiu":
        raise InputError(path, "not a latent array (.npy of numbers)")
    finite = np.isfinite(latent).reshape(len(latent), -1).all(1) if latent.ndim else np.isfinite(latent)
    if not np.all(finite):
        raise InputError(path, f"latent array holds NaN/inf values (first at row {int(np.flatnonzero(~finite)[0])}, "
                               "0-based)" if latent.ndim else "latent array holds NaN/inf values")
    return latent


def environment(seed: int, command_line: list[str] | None, device: str, world_size: int) -> dict:
    """Versions and invocation facts for ``environment.json``."""
    import datetime

    try:
        from importlib.metadata import version

        gmmplat_version = version("gmmplat")
    except Exception:
        from . import __version__ as gmmplat_version
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "gmmplat": gmmplat_version,
        "platform": platform.platform(),
        "seed": int(seed),
        "command_line": list(sys.argv if command_line is None else command_line),
        "device": str(device),
        "world_size": int(world_size),
        "torch_threads": int(torch.get_num_threads()),
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
    }


def image_names(table) -> list[str]:
    """``name@index`` per particle (stack file name without its folder, 0-based index), in table order."""
    stacks = [os.path.basename(str(s)) for s in table["stack_path"]]
    return [f"{s}@{int(i)}" for s, i in zip(stacks, table["image_index"])]


def pose_sketch(table, k: int = 4) -> list[list[float]]:
    """``(k, 11)``: the rotation matrices (9) and shifts (2, in 10 Å) of all particles, each weighted by
    ``cos(a_j · row + b_j)`` and summed (/ √n).  Other poses or another order change it by O(1);
    the same poses read from a STAR or a .cs file (float32) agree to ~1e-6, hence a sketch, not a hash."""
    from .physics.geometry import euler_to_matrix

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
