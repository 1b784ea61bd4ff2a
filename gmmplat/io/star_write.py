"""Writing RELION particle STAR files (3.0 and 3.1) from the normalized table.

:func:`write_particle_star` is re-exported from :mod:`gmmplat.io.star`, which
reads these files and defines :data:`~gmmplat.io.star.TABLE_COLUMNS`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from gmmplat.io.atomic import atomic_write_path
from gmmplat.io.star_columns import _CTF_NAMES, _POSE_NAMES, CTF_COLUMNS, POSE_COLUMNS, TABLE_COLUMNS

__all__ = ["write_particle_star"]

#: Columns the writer derives from the table (never copied from ``extra_columns``).
_MANAGED = {"rlnImageName", *POSE_COLUMNS, *CTF_COLUMNS, "rlnOriginX", "rlnOriginY", "rlnOriginXAngst",
            "rlnOriginYAngst", "rlnImagePixelSize", "rlnMagnification", "rlnDetectorPixelSize", "rlnPhaseShift",
            "rlnCtfBfactor", "rlnOpticsGroup", "rlnOpticsGroupName", "rlnImageSize", "rlnImageDimensionality"}


def write_particle_star(
    path: str | os.PathLike,
    table: pd.DataFrame,
    version: str = "3.1",
    extra_columns: pd.DataFrame | None = None,
) -> None:
    """Write a normalized particle table as a RELION 3.1 or 3.0 STAR file, atomically.

    Args:
        path: destination STAR file.
        table: DataFrame with :data:`TABLE_COLUMNS` (``box_size`` may be NaN;
            pose/CTF columns that are all NaN are left out).
        version: ``"3.1"`` (``data_optics`` + ``data_particles``, shifts in Å)
            or ``"3.0"`` (one block, shifts in pixels, CTF on each particle).
        extra_columns: optional ``rln*`` columns (same rows as ``table``)
            appended to the particles block, e.g. ``star.raw_particles``;
            columns gmmplat writes itself are skipped.

    ``rlnImageName`` is ``NNNNNN@path`` with the path relative to the STAR
    file's folder.
    """
    if version not in ("3.0", "3.1"):
        raise ValueError(f"version must be '3.0' or '3.1', got {version!r}")
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"particle table lacks columns {missing}")
    t = table.reset_index(drop=True)
    star_dir = Path(os.path.abspath(path)).parent
    image_names = [f"{int(i) + 1:06d}@{_relative(s, star_dir)}" for s, i in zip(t["stack_path"], t["image_index"])]
    part = pd.DataFrame({"rlnImageName": image_names})
    for col, out in {**_POSE_NAMES, **_CTF_NAMES}.items():
        if version == "3.1" and col in CTF_COLUMNS[3:]:
            continue
        if not t[out].isna().all():
            part[col] = t[out].to_numpy(dtype=np.float64)
    pixel = t["pixel_size_angstrom"].to_numpy(dtype=np.float64)
    blocks: dict[str, pd.DataFrame] = {}
    if version == "3.1":
        part["rlnOriginXAngst"] = t["shift_x_angstrom"].to_numpy(dtype=np.float64)
        part["rlnOriginYAngst"] = t["shift_y_angstrom"].to_numpy(dtype=np.float64)
        groups, optics = _optics_table(t)
        blocks["optics"] = optics
    else:
        part["rlnOriginX"] = t["shift_x_angstrom"].to_numpy(dtype=np.float64) / pixel
        part["rlnOriginY"] = t["shift_y_angstrom"].to_numpy(dtype=np.float64) / pixel
        part["rlnImagePixelSize"] = pixel
        part["rlnMagnification"] = 10000.0
        part["rlnDetectorPixelSize"] = pixel  # µm; pixel = det * 1e4 / mag
        if not t["box_size"].isna().any():
            part["rlnImageSize"] = t["box_size"].to_numpy(dtype=np.float64).astype(np.int64)
    part["rlnPhaseShift"] = t["phase_shift_deg"].to_numpy(dtype=np.float64)
    part["rlnCtfBfactor"] = t["bfactor"].to_numpy(dtype=np.float64)
    if version == "3.1":
        part["rlnOpticsGroup"] = groups
    if extra_columns is not None:
        if len(extra_columns) != len(t):
            raise ValueError(f"extra_columns has {len(extra_columns)} rows, table has {len(t)}")
        for col in extra_columns.columns:
            if str(col).startswith("rln") and col not in _MANAGED:
                part[col] = extra_columns[col].to_numpy()
    blocks["particles"] = part
    text = "".join(_format_block(name if version == "3.1" else "", df) for name, df in blocks.items())
    with atomic_write_path(path) as tmp:
        Path(tmp).write_text(text)


def _relative(stack: str, star_dir: Path) -> str:
    try:
        return os.path.relpath(os.path.abspath(stack), star_dir)
    except ValueError:  # different drive (Windows)
        return os.path.abspath(stack)


def _optics_table(t: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Optics groups from the table: the original numbers when each is uniform, else renumbered."""
    keys = ["voltage_kv", "cs_mm", "amplitude_contrast", "pixel_size_angstrom", "box_size"]
    combos = t[["optics_group", *keys]].drop_duplicates()
    if combos["optics_group"].is_unique:
        groups = t["optics_group"].to_numpy(dtype=np.int64)
    else:
        groups = t[["optics_group", *keys]].groupby(["optics_group", *keys], dropna=False).ngroup().to_numpy() + 1
        combos = t[keys].assign(optics_group=groups).drop_duplicates()
    combos = combos.sort_values("optics_group")
    optics = pd.DataFrame({
        "rlnOpticsGroupName": [f"opticsGroup{g}" for g in combos["optics_group"]],
        "rlnOpticsGroup": combos["optics_group"].to_numpy(dtype=np.int64),
    })
    for col, out in zip(CTF_COLUMNS[3:], ["voltage_kv", "cs_mm", "amplitude_contrast"]):
        if not combos[out].isna().any():
            optics[col] = combos[out].to_numpy(dtype=np.float64)
    optics["rlnImagePixelSize"] = combos["pixel_size_angstrom"].to_numpy(dtype=np.float64)
    if not combos["box_size"].isna().any():
        optics["rlnImageSize"] = combos["box_size"].to_numpy(dtype=np.float64).astype(np.int64)
    optics["rlnImageDimensionality"] = 2
    return np.asarray(groups, dtype=np.int64), optics


def _format_block(name: str, df: pd.DataFrame) -> str:
    """One STAR loop block in RELION's layout."""
    header = ["", "# version 30001"] if name else []
    lines = [*header, "", f"data_{name}", "", "loop_"]
    lines += [f"_{col} #{i + 1}" for i, col in enumerate(df.columns)]
    columns = [_format_column(df[col]) for col in df.columns]
    lines += ["\t".join(row) for row in zip(*columns)]
    return "\n".join(lines) + "\n\n"


def _format_column(series: pd.Series) -> list[str]:
    if pd.api.types.is_integer_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return [str(int(v)) for v in series]
    if pd.api.types.is_float_dtype(series.dtype):
        return [f"{v:.6f}" if np.isfinite(v) else "nan" for v in series]
    out = []
    for v in series.astype(str):
        out.append(f'"{v}"' if (not v or any(ch.isspace() for ch in v)) else v)
    return out
