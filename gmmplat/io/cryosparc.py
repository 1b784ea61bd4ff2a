"""cryoSPARC particle files (``.cs``) as the same normalized table as a RELION STAR file.

A ``.cs`` file is a NumPy structured array (``np.load``), one record per particle.
:func:`read_particle_cs` reads it, joins the fields it lacks from a passthrough file
by ``uid``, and returns a :class:`~gmmplat.io.star.ParticleStar` whose ``table`` has
:data:`~gmmplat.io.star.TABLE_COLUMNS`, so every consumer of STAR input takes it
unchanged.  Conventions (docs/conventions.md, after cryoDRGN 4.3.1
``parse_pose_csparc`` / ``parse_ctf_csparc``):

* ``A = Rodrigues(alignments3D/pose)ᵀ`` (RELION's matrix), stored as RELION Euler
  angles (:func:`gmmplat.physics.geometry.matrix_to_euler`);
* ``rlnOriginX/Y`` (pixels) = ``alignments3D/shift``, in pixels of
  ``alignments3D/psize_A`` when present, else of ``blob/psize_A``;
* ``rlnDefocusU/V`` = ``ctf/df1_A``/``df2_A``; ``rlnDefocusAngle`` =
  degrees(``ctf/df_angle_rad``); ``rlnPhaseShift`` = degrees(``ctf/phase_shift_rad``);
* images: ``blob/path`` (relative to ``datadir``, else the file's folder or one of
  its 3 parents), ``blob/idx`` 0-based; white protein, as in RELION.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gmmplat.errors import InputError
from gmmplat.io.star import (TABLE_COLUMNS, ParticleStar, _groups_from_values, _resolve_stack, fill_missing,
                             given_for_present_value, option_hint)

__all__ = ["read_particle_cs", "load_cs", "POSE_FIELDS", "CTF_FIELDS", "IMAGE_FIELDS"]

IMAGE_FIELDS = ["blob/path", "blob/idx", "blob/psize_A"]
POSE_FIELDS = ["alignments3D/pose", "alignments3D/shift"]
#: cryoSPARC CTF field -> (table column, factor to the table's unit)
CTF_FIELDS = {
    "ctf/df1_A": ("defocus_u_angstrom", 1.0),
    "ctf/df2_A": ("defocus_v_angstrom", 1.0),
    "ctf/df_angle_rad": ("defocus_angle_deg", 180.0 / np.pi),
    "ctf/accel_kv": ("voltage_kv", 1.0),
    "ctf/cs_mm": ("cs_mm", 1.0),
    "ctf/amp_contrast": ("amplitude_contrast", 1.0),
}


def load_cs(path: str | os.PathLike, what: str = "cryoSPARC .cs file") -> np.ndarray:
    """A ``.cs`` file as a structured array ``(N,)``; one-line InputError (saying what the file looks
    like and what is expected, ``what``) when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found" if not path.exists() else "not a regular file")
    expected = f"not a {what} (expected the NumPy array of particle records cryoSPARC writes"
    try:
        data = np.load(path, allow_pickle=False)
    except Exception:  # numpy's own reason would advise loading pickles: not what a user should do here
        raise InputError(path, f"{expected}; this file {_looks_like(path)})") from None
    if not isinstance(data, np.ndarray) or data.dtype.names is None or data.ndim != 1:
        raise InputError(path, f"{expected}; this file holds a plain {data.dtype} array)" if isinstance(
            data, np.ndarray) else f"{expected}; this file is an .npz archive)")
    if len(data) == 0:
        raise InputError(path, "holds no particles")
    return data


def read_particle_cs(
    path: str | os.PathLike,
    passthrough: str | os.PathLike | None = None,
    datadir: str | os.PathLike | None = None,
    require_poses: bool = True,
    require_ctf: bool = True,
    ctf_defaults: dict[str, float] | None = None,
) -> ParticleStar:
    """Read a cryoSPARC particle file (and its passthrough) into the normalized table.

    Args:
        path: the ``.cs`` particle file (e.g. a refinement's ``particles.cs``).
        passthrough: optional ``.cs`` whose fields the particle file lacks
            (e.g. ``P1_J12_passthrough_particles.cs``); joined by ``uid``.
        datadir: folder that relative ``blob/path`` start from (the cryoSPARC
            project folder). Default: the file's folder or one of its 3 parents.
        require_poses: raise if ``alignments3D/pose``/``shift`` are missing (else NaN/0).
        require_ctf: raise if a CTF field is missing (else NaN).
        ctf_defaults: values for ``voltage_kv``, ``cs_mm``, ``amplitude_contrast``
            used where neither file has the field (noted in ``notes``).

    Raises:
        InputError: unreadable file, missing field, a uid absent from the
            passthrough, bad values.
    """
    path = Path(path)
    records = _join_passthrough(path, _unique_uids(path, load_cs(path)), passthrough)
    names = set(records.dtype.names)
    where = f" (nor in {passthrough})" if passthrough else ""
    missing = [f for f in IMAGE_FIELDS if f not in names]
    if missing:
        raise InputError(path, f"missing image field(s): {', '.join(missing)}{where}")
    n = len(records)
    table = pd.DataFrame(index=pd.RangeIndex(n))
    files = pd.Series([_text(v) for v in records["blob/path"]])
    resolved = {f: _resolve_stack(path, f, datadir) for f in files.unique()}
    table["stack_path"] = files.map(resolved).to_numpy(dtype=object)
    idx = _numeric(path, records, "blob/idx")
    if np.any(idx < 0) or np.any(idx != np.round(idx)):
        raise InputError(path, "blob/idx must hold integers >= 0")
    table["image_index"] = idx.astype(np.int64)
    pixel = _numeric(path, records, "blob/psize_A")
    if np.any(pixel <= 0):
        raise InputError(path, f"blob/psize_A must be positive (found {pixel.min():g} Å)")

    missing = [f for f in POSE_FIELDS if f not in names]
    if missing and require_poses:
        raise InputError(path, f"missing pose field(s): {', '.join(missing)}{where}")
    from gmmplat.physics.geometry import axis_angle_to_matrix, matrix_to_euler
    import torch

    if "alignments3D/pose" in names:
        pose = _numeric(path, records, "alignments3D/pose", width=3)
        A = axis_angle_to_matrix(torch.as_tensor(pose, dtype=torch.float64)).transpose(-1, -2)
        angles = matrix_to_euler(A).numpy()
    else:
        angles = np.full((n, 3), np.nan)
    for j, col in enumerate(("rot_deg", "tilt_deg", "psi_deg")):
        table[col] = angles[:, j]
    shift = _numeric(path, records, "alignments3D/shift", width=2) if "alignments3D/shift" in names else np.zeros((n, 2))
    align_pixel = _numeric(path, records, "alignments3D/psize_A") if "alignments3D/psize_A" in names else pixel
    table["shift_x_angstrom"] = shift[:, 0] * align_pixel
    table["shift_y_angstrom"] = shift[:, 1] * align_pixel

    notes: list[str] = []
    supplied = {f: fill_missing(ctf_defaults, out, f, path, notes) for f, (out, _) in CTF_FIELDS.items()
                if f not in names}
    missing = [f for f, v in supplied.items() if v is None]
    if missing and require_ctf:
        hint = option_hint(missing, {f: out for f, (out, _) in CTF_FIELDS.items()})
        raise InputError(path, f"missing CTF field(s): {', '.join(missing)}{where}{hint}")
    for f, (out, factor) in CTF_FIELDS.items():
        if f in names:
            table[out] = _numeric(path, records, f) * factor
            given_for_present_value(ctf_defaults, out, f, table[out].to_numpy(dtype=np.float64), path, notes)
        else:
            table[out] = np.nan if supplied[f] is None else supplied[f]
    table["phase_shift_deg"] = (np.degrees(_numeric(path, records, "ctf/phase_shift_rad"))
                                if "ctf/phase_shift_rad" in names else 0.0)
    table["bfactor"] = _numeric(path, records, "ctf/bfactor") if "ctf/bfactor" in names else 0.0
    table["pixel_size_angstrom"] = pixel
    table["box_size"] = (_numeric(path, records, "blob/shape", width=2)[:, -1]
                         if "blob/shape" in names else np.nan)
    table["optics_group"] = _groups_from_values(table)
    raw = pd.DataFrame({f: records[f] for f in records.dtype.names if records[f].ndim == 1})
    return ParticleStar(path=path, table=table[TABLE_COLUMNS], raw={"particles": raw}, version="cs",
                        particles_block="particles", notes=notes, records=records)


def _join_passthrough(path: Path, records: np.ndarray, passthrough) -> np.ndarray:
    """``records`` with the passthrough's extra fields appended, rows matched by ``uid``."""
    if passthrough is None:
        return records
    extra = _unique_uids(passthrough, load_cs(passthrough, "cryoSPARC .cs file (passthrough)"))
    for name, arr, where in (("particle file", records, path), ("passthrough", extra, passthrough)):
        if "uid" not in arr.dtype.names:
            raise InputError(where, f"no uid field: cannot join the {name} by uid")
    new = [f for f in extra.dtype.names if f not in records.dtype.names]
    if not new:
        return records
    order = np.argsort(extra["uid"], kind="stable")
    pos = np.searchsorted(extra["uid"][order], records["uid"])
    pos = np.minimum(pos, len(order) - 1)
    found = extra["uid"][order][pos] == records["uid"]
    if not np.all(found):
        absent = records["uid"][~found]
        raise InputError(passthrough, f"{absent.size} uid(s) of {path} not in the passthrough file "
                                      f"(first: {int(absent[0])})")
    rows = extra[order][pos]
    dtype = np.dtype([*[(f, records.dtype.fields[f][0]) for f in records.dtype.names],
                      *[(f, extra.dtype.fields[f][0]) for f in new]])
    out = np.empty(len(records), dtype=dtype)
    for f in records.dtype.names:
        out[f] = records[f]
    for f in new:
        out[f] = rows[f]
    return out


def _looks_like(path: Path) -> str:
    """What a file that is not a .cs seems to be, from its first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"\x93NUMPY"):
        return "is a damaged or unreadable NumPy file"
    if head.startswith(b"PK"):
        return "is a zip/.npz archive"
    try:
        text = head.decode()
    except UnicodeDecodeError:
        return "is binary data of an unknown format"
    if "data_" in text or "_rln" in text:
        return "is a RELION STAR file"
    return "is a text file"


def _unique_uids(path, records: np.ndarray) -> np.ndarray:
    """``records``, refused (one line naming the first repeated uid) when a uid appears twice: a join by
    uid would then give a particle another's fields."""
    if records.dtype.names is None or "uid" not in records.dtype.names:
        return records
    uids, counts = np.unique(records["uid"], return_counts=True)
    if np.any(counts > 1):
        first = int(uids[counts > 1][0])
        raise InputError(path, f"uid {first} appears {int(counts[counts > 1][0])} times "
                               f"({int((counts > 1).sum())} repeated uid(s)); each particle record needs its own uid")
    return records


def _text(value) -> str:
    """A ``blob/path`` entry as text; cryoSPARC marks some paths with a leading ``>``."""
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.strip().lstrip(">")


def _numeric(path: Path, records: np.ndarray, name: str, width: int | None = None) -> np.ndarray:
    """Float64 ``(N,)`` (or ``(N, width)``) of field ``name``; one-line InputError on bad values."""
    values = np.asarray(records[name], dtype=np.float64)
    if width is not None and (values.ndim != 2 or values.shape[1] < width):
        raise InputError(path, f"field {name} has shape {values.shape[1:]} per particle; expected ({width},)")
    if width is not None:
        values = values[:, :width]
    bad = np.flatnonzero(~np.all(np.isfinite(values.reshape(len(values), -1)), axis=1))
    if bad.size:
        raise InputError(path, f"field {name} has {bad.size} non-finite value(s) (first at record {bad[0]})")
    return values
