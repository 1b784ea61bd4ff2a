"""What a run's particles were: STAR content hash, particle count, stack sizes, and their identity.

Stored in the run's ``config.json`` (``data_fingerprint``).  ``--resume`` compares all of it,
so a STAR file or stack edited in place is not resumed silently.  The verbs that read a run
together with particles compare the identity only (:func:`gmmplat.records.check_run_particles`).
"""
from __future__ import annotations

import hashlib
import os

from ..errors import ConfigError
from ..records import particle_identity


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


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
