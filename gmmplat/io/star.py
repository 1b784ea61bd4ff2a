"""RELION particle STAR files (3.0 and 3.1+) as one normalized table.

:func:`read_particle_star` reads both layouts with the ``starfile`` package:

* **3.0**: one data block; ``rlnOriginX/Y`` in pixels; CTF columns and pixel
  size (``rlnImagePixelSize`` or ``rlnDetectorPixelSize * 1e4 / rlnMagnification``)
  on each particle.
* **3.1+**: ``data_optics`` + ``data_particles``; ``rlnOriginX/YAngst`` in Å;
  voltage, Cs, amplitude contrast, pixel and box size in optics groups.

A column is looked up on the particle first, then in its optics group, so
mixed files work. :func:`write_particle_star` (in :mod:`gmmplat.io.star_write`,
re-exported here) writes the table back as 3.0 or 3.1. The result, :data:`TABLE_COLUMNS`, is described in
``docs/io.md``; one row per particle, in file order.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from gmmplat.errors import InputError
from gmmplat.io.star_columns import _CTF_NAMES, _POSE_NAMES, CTF_COLUMNS, POSE_COLUMNS, TABLE_COLUMNS  # noqa: F401

__all__ = ["ParticleStar", "TABLE_COLUMNS", "read_particle_star", "write_particle_star"]

#: Options that supply a CTF value a file lacks (RELION 3.0 files converted from cryoSPARC).
CTF_OPTIONS = {"voltage_kv": "--voltage", "cs_mm": "--cs-mm", "amplitude_contrast": "--amplitude-contrast"}
_ANCESTOR_LEVELS = 3  # RELION paths are relative to the project folder, e.g. Refine3D/job012/


@dataclass
class ParticleStar:
    """A particle STAR file as read.

    Attributes:
        path: the STAR file.
        table: normalized DataFrame, columns :data:`TABLE_COLUMNS`, one row per
            particle (index ``0..N-1`` in file order).
        raw: every data block as read by ``starfile`` (block name -> DataFrame).
        version: ``"3.0"`` (no optics block), ``"3.1"``, or ``"cs"`` (a cryoSPARC
            file read by :func:`gmmplat.io.cryosparc.read_particle_cs`).
        particles_block: name of the particles block in ``raw``.
        notes: one line per value the reader supplied from an option (e.g. an
            amplitude contrast the file lacks), for the command line to print.
        records: cryoSPARC only: the structured array, passthrough fields joined
            by ``uid`` (same row order as ``table``); None for STAR files.
        trust_pixel_size: use the file's pixel size even where a stack header sets
            another (``--trust-star-pixel-size``; :class:`gmmplat.io.stacks.StackReader`).
    """

    path: Path
    table: pd.DataFrame
    raw: dict[str, pd.DataFrame] = field(repr=False)
    version: str
    particles_block: str
    notes: list[str] = field(default_factory=list)
    records: np.ndarray | None = field(default=None, repr=False)
    trust_pixel_size: bool = False

    @property
    def raw_particles(self) -> pd.DataFrame:
        """The original particles block (all its columns, same row order as ``table``)."""
        return self.raw[self.particles_block]


def read_particle_star(
    path: str | os.PathLike,
    require_poses: bool = True,
    require_ctf: bool = True,
    project_dir: str | os.PathLike | None = None,
    ctf_defaults: dict[str, float] | None = None,
) -> ParticleStar:
    """Read a RELION 3.0 or 3.1+ particle STAR file.

    Args:
        path: the STAR file.
        require_poses: raise if ``rlnAngleRot/Tilt/Psi`` are missing (else NaN).
            Missing origin columns always mean a zero shift, as in RELION.
        require_ctf: raise if any of ``rlnDefocusU/V/Angle``, ``rlnVoltage``,
            ``rlnSphericalAberration``, ``rlnAmplitudeContrast`` is missing
            (else NaN).
        project_dir: folder that relative ``rlnImageName`` paths start from.
            Default: the STAR file's folder, or else the nearest of its
            3 parent folders where the stack exists (a RELION project folder).
        ctf_defaults: values for ``voltage_kv``, ``cs_mm``, ``amplitude_contrast``
            used only where the file has no such column (:data:`CTF_OPTIONS`);
            each use is recorded in ``notes``, never silent.

    Raises:
        InputError: missing or unparseable file, no particles block, missing
            pose/CTF/pixel-size columns, bad values, undefined optics groups.
    """
    path = Path(path)
    raw = _read_blocks(path)
    optics = raw.get("optics")
    name = _particles_block_name(path, raw)
    particles = raw[name]
    if len(particles) == 0:
        raise InputError(path, f"particles block data_{name} has no particles")
    version = "3.0" if optics is None else "3.1"
    look = _Lookup(path, particles, optics)

    table = pd.DataFrame(index=pd.RangeIndex(len(particles)))
    stacks, indices = _parse_image_names(path, particles, project_dir)
    table["stack_path"] = stacks
    table["image_index"] = indices
    notes: list[str] = []
    for names, required, what in ((_POSE_NAMES, require_poses, "pose"), (_CTF_NAMES, require_ctf, "CTF")):
        supplied = {c: fill_missing(ctf_defaults, out, c, path, notes) for c, out in names.items() if not look.has(c)}
        missing = [c for c, v in supplied.items() if v is None]
        if missing and required:
            raise InputError(path, f"missing {what} column(s): {', '.join(missing)}{option_hint(missing, names)}")
        for col, out in names.items():
            table[out] = look.numeric(col) if look.has(col) else (np.nan if supplied[col] is None else supplied[col])
    for col, out in _CTF_NAMES.items():
        if look.has(col):
            given_for_present_value(ctf_defaults, out, col, table[out].to_numpy(dtype=np.float64), path, notes)
    pixel = _pixel_size(path, look)
    for axis in ("X", "Y"):
        if look.has(f"rlnOrigin{axis}Angst"):
            shift = look.numeric(f"rlnOrigin{axis}Angst")
        elif look.has(f"rlnOrigin{axis}"):
            shift = look.numeric(f"rlnOrigin{axis}") * pixel
        else:
            shift = np.zeros(len(particles))
        table[f"shift_{axis.lower()}_angstrom"] = shift
    table["phase_shift_deg"] = look.numeric("rlnPhaseShift") if look.has("rlnPhaseShift") else 0.0
    table["bfactor"] = look.numeric("rlnCtfBfactor") if look.has("rlnCtfBfactor") else 0.0
    table["pixel_size_angstrom"] = pixel
    table["box_size"] = look.numeric("rlnImageSize") if look.has("rlnImageSize") else np.nan
    table["optics_group"] = look.groups if look.groups is not None else _groups_from_values(table)
    return ParticleStar(path=path, table=table[TABLE_COLUMNS], raw=raw, version=version, particles_block=name,
                        notes=notes)


def fill_missing(defaults: dict[str, float] | None, out: str, field_name: str, path: Path,
                 notes: list[str]) -> float | None:
    """The option value standing in for a missing column/field ``field_name`` (table column ``out``), noted."""
    value = None if defaults is None else defaults.get(out)
    if value is None:
        return None
    notes.append(f"{path}: no {field_name}; using {CTF_OPTIONS[out]} {float(value):g} for every particle")
    return float(value)


def given_for_present_value(defaults: dict[str, float] | None, out: str, field_name: str, values: np.ndarray,
                            path: Path, notes: list[str]) -> None:
    """An option given for a value the file has: noted when it agrees, refused when it does not (the
    file's value would be used, so the option would be silently ignored)."""
    value = None if defaults is None else defaults.get(out)
    if value is None:
        return
    option = CTF_OPTIONS[out]
    if np.allclose(values, float(value), rtol=1e-4, atol=1e-6):
        notes.append(f"{path}: has {field_name} ({float(value):g}, as {option}); {option} is not needed")
        return
    found = f"{values.min():g}" if values.min() == values.max() else f"{values.min():g} to {values.max():g}"
    raise InputError(path, f"{option} {float(value):g} given but the file has {field_name} ({found}), which is "
                           f"used; drop {option}, or correct {field_name} in the file")


def option_hint(missing: list[str], names: dict[str, str]) -> str:
    """`` (give ... with --option)`` for missing columns an option can supply, and what to do about the
    others (defocus comes from CTF estimation, not from an option)."""
    options = [CTF_OPTIONS[names[c]] for c in missing if names.get(c) in CTF_OPTIONS]
    others = [c for c in missing if names.get(c) not in CTF_OPTIONS]
    parts = [f"give the value with {', '.join(options)}"] if options else []
    if others and names is not _POSE_NAMES and any("efocus" in c or "df" in c for c in others):
        parts.append(f"no option supplies {', '.join(others)}: use the particle file of a job after CTF "
                     "estimation (defocus per particle)")
    return f" ({'; '.join(parts)})" if parts else ""


def _read_blocks(path: Path) -> dict[str, pd.DataFrame]:
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a regular file")
    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile/pandas raise many kinds on bad text
        hint = "a loop row has more values than the loop has columns; " if "Length mismatch" in str(exc) else ""
        raise InputError(path, f"cannot parse STAR file ({hint}{type(exc).__name__}: {exc})") from None
    if not blocks:
        raise InputError(path, "not a STAR file (no data blocks found)")
    return {k: (v if isinstance(v, pd.DataFrame) else pd.DataFrame([v])) for k, v in blocks.items()}


def _particles_block_name(path: Path, raw: dict[str, pd.DataFrame]) -> str:
    if "particles" in raw:
        name = "particles"
    else:
        with_images = [k for k, v in raw.items() if "rlnImageName" in v.columns]
        if not with_images:
            raise InputError(path, f"no particles block (blocks: {', '.join('data_' + k for k in raw)})")
        name = with_images[0]
    if "rlnImageName" not in raw[name].columns:
        raise InputError(path, f"particles block data_{name} has no rlnImageName column")
    return name


class _Lookup:
    """Column access on particles first, then through their optics group."""

    def __init__(self, path: Path, particles: pd.DataFrame, optics: pd.DataFrame | None):
        self.path, self.particles, self.optics, self.groups = path, particles, None, None
        if optics is None:
            if "rlnOpticsGroup" in particles.columns:
                self.groups = self._ints(particles["rlnOpticsGroup"], "rlnOpticsGroup")
            return
        if "rlnOpticsGroup" not in optics.columns:
            raise InputError(path, "optics block has no rlnOpticsGroup column")
        ids = self._ints(optics["rlnOpticsGroup"], "rlnOpticsGroup (optics block)")
        if len(set(ids)) != len(ids):
            raise InputError(path, "optics block defines the same rlnOpticsGroup twice")
        self.optics = optics.set_axis(pd.Index(ids), axis=0)
        if "rlnOpticsGroup" in particles.columns:
            self.groups = self._ints(particles["rlnOpticsGroup"], "rlnOpticsGroup")
        elif len(ids) == 1:
            self.groups = np.full(len(particles), ids[0], dtype=np.int64)
        else:
            raise InputError(path, f"particles have no rlnOpticsGroup column but {len(ids)} optics groups are defined")
        undefined = sorted(set(self.groups.tolist()) - set(ids.tolist()))
        if undefined:
            raise InputError(path, f"particles use optics group(s) {undefined} not defined in data_optics "
                                   f"(defined: {sorted(ids.tolist())})")

    def has(self, col: str) -> bool:
        return col in self.particles.columns or (self.optics is not None and col in self.optics.columns)

    def numeric(self, col: str) -> np.ndarray:
        """Float64 array (N,) of column ``col``; InputError on missing/non-numeric values."""
        if col in self.particles.columns:
            series = self.particles[col]
        else:
            series = pd.Series(self.optics[col].reindex(self.groups).to_numpy())
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise InputError(self.path, f"column {col} has {bad.size} missing or non-numeric value(s) "
                                        f"(first at particle row {bad[0] + 1}, counted from 1: {series.iloc[bad[0]]!r})")
        return values

    def _ints(self, series: pd.Series, col: str) -> np.ndarray:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            first = int(np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))[0])
            raise InputError(self.path, f"column {col} must hold integers (particle row {first + 1}, counted from 1: {series.iloc[first]!r})")
        return values.astype(np.int64)


def _parse_image_names(path: Path, particles: pd.DataFrame, project_dir) -> tuple[np.ndarray, np.ndarray]:
    names = particles["rlnImageName"].astype(str).str.strip()
    parts = names.str.partition("@")
    has_at = parts[1] == "@"
    number = pd.to_numeric(parts[0].where(has_at, "1"), errors="coerce")
    files = parts[2].where(has_at, names)
    bad = np.flatnonzero(~np.isfinite(number.to_numpy(dtype=np.float64)) | (number.to_numpy() < 1) | (files == ""))
    if bad.size:
        raise InputError(path, f"bad rlnImageName {names.iloc[bad[0]]!r} at particle row {bad[0] + 1} "
                               "(counted from 1; expected N@stack.mrcs with N >= 1)")
    resolved = {f: _resolve_stack(path, f, project_dir) for f in files.unique()}
    return files.map(resolved).to_numpy(dtype=object), number.to_numpy().astype(np.int64) - 1


def _resolve_stack(star_path: Path, name: str, project_dir) -> str:
    rel = Path(name)
    if rel.is_absolute():
        return str(rel)
    if project_dir is not None:
        return os.path.abspath(Path(project_dir) / rel)
    base = Path(os.path.abspath(star_path)).parent
    for candidate in [base, *base.parents][: _ANCESTOR_LEVELS + 1]:
        if (candidate / rel).is_file():
            return os.path.abspath(candidate / rel)
    return os.path.abspath(base / rel)


def _pixel_size(path: Path, look: _Lookup) -> np.ndarray:
    if look.has("rlnImagePixelSize"):
        pixel = look.numeric("rlnImagePixelSize")
    elif look.has("rlnDetectorPixelSize") and look.has("rlnMagnification"):
        pixel = look.numeric("rlnDetectorPixelSize") * 1e4 / look.numeric("rlnMagnification")
    else:
        raise InputError(path, "no pixel size: needs rlnImagePixelSize, or rlnDetectorPixelSize and rlnMagnification")
    if np.any(pixel <= 0):
        raise InputError(path, f"pixel size must be positive (found {pixel.min():g} Å)")
    return pixel


def _groups_from_values(table: pd.DataFrame) -> np.ndarray:
    """3.0 files: one optics group per distinct (voltage, Cs, Q, pixel, box), numbered from 1."""
    keys = ["voltage_kv", "cs_mm", "amplitude_contrast", "pixel_size_angstrom", "box_size"]
    return table[keys].groupby(keys, sort=False, dropna=False).ngroup().to_numpy(dtype=np.int64) + 1


# The writer lives in gmmplat.io.star_write (it uses the column constants above); re-exported here.
from gmmplat.io.star_write import write_particle_star  # noqa: E402
