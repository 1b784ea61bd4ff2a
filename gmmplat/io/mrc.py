"""Reading and writing MRC maps (volumes) in world coordinates.

Convention (docs/conventions.md): a volume is indexed ``[z, y, x]``; voxel
``(i, j, k)`` (x, y, z indices) sits at world position
``origin_angstrom + (i, j, k) * voxel_size_angstrom``. The origin is taken from
the header ``origin`` fields; when those are all zero and the
``nxstart/nystart/nzstart`` fields are not, the origin is ``start * voxel``
(as ChimeraX does).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import mrcfile
import numpy as np

from gmmplat.errors import InputError
from gmmplat.io.atomic import atomic_write_path

__all__ = ["MapData", "read_map", "write_map", "box_centre_world_angstrom", "open_mrc_checked"]


@dataclass
class MapData:
    """A 3D density map.

    Attributes:
        data: float32 array ``[z, y, x]``.
        voxel_size_angstrom: edge of a (cubic) voxel, Å.
        origin_angstrom: float64 array ``(3,)``, **x, y, z** order, Å: world
            position of voxel ``(0, 0, 0)``.
    """

    data: np.ndarray
    voxel_size_angstrom: float
    origin_angstrom: np.ndarray

    @property
    def shape_xyz(self) -> tuple[int, int, int]:
        """Number of voxels along x, y, z."""
        nz, ny, nx = self.data.shape
        return nx, ny, nz


def _check_is_file(path: Path) -> None:
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a regular file")


def open_mrc_checked(path: str | os.PathLike, mmap: bool = False) -> mrcfile.mrcfile.MrcFile:
    """Open an MRC file read-only after checking it exists and is complete.

    Args:
        path: the MRC file.
        mmap: memory-map the data (``mrcfile.mmap``) instead of reading it.

    Returns:
        An open ``mrcfile`` object; the caller closes it.

    Raises:
        InputError: missing file, not an MRC file, or a file shorter than its
            header announces (truncated).
    """
    path = Path(path)
    _check_is_file(path)
    h, expected = _checked_header(path)
    nx, ny, nz = int(h.nx), int(h.ny), int(h.nz)
    size = path.stat().st_size
    compressed = _looks_compressed(path)
    if not compressed and size < expected:
        raise InputError(
            path, f"truncated MRC file: header announces {expected} bytes ({nx}x{ny}x{nz}), file has {size}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mmap and not compressed:
                return mrcfile.mmap(path, mode="r", permissive=True)
            return mrcfile.open(path, mode="r", permissive=True)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(path, f"not a valid MRC file ({_one_line(exc)})") from None


def _checked_header(path: Path):
    """Header and expected file size (bytes) of an MRC file, read permissively.

    Files without the ``MAP `` ID string or with machine stamp 0 (RELION 3.1 stacks,
    older CCP4 tools) are accepted when what matters is sound: a known data mode and
    positive dimensions.  Anything else is "not a valid MRC file", with mrcfile's
    strict complaint as the reason.
    """
    strict_problem = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.open(path, mode="r", permissive=False, header_only=True) as hdr:
                h = hdr.header.copy()
    except (ValueError, OSError, EOFError) as exc:
        strict_problem = _one_line(exc)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with mrcfile.open(path, mode="r", permissive=True, header_only=True) as hdr:
                    h = hdr.header.copy()
        except (ValueError, OSError, EOFError):
            raise InputError(path, f"not a valid MRC file ({strict_problem})") from None
    try:
        dtype = mrcfile.utils.data_dtype_from_header(h)
    except ValueError as exc:
        raise InputError(path, f"not a valid MRC file ({strict_problem or _one_line(exc)}; "
                               f"data mode {int(h.mode)} unknown)") from None
    nx, ny, nz = int(h.nx), int(h.ny), int(h.nz)
    if min(nx, ny, nz) < 1 or int(h.nsymbt) < 0:
        raise InputError(path, f"not a valid MRC file ({strict_problem + '; ' if strict_problem else ''}"
                               f"dimensions {nx}x{ny}x{nz})")
    return h, 1024 + int(h.nsymbt) + nx * ny * nz * dtype.itemsize


def _looks_compressed(path: Path) -> bool:
    with open(path, "rb") as fh:
        magic = fh.read(3)
    return magic[:2] == b"\x1f\x8b" or magic == b"BZh"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _voxel_size(path: Path, mrc: mrcfile.mrcfile.MrcFile) -> float:
    vs = mrc.voxel_size
    sizes = np.array([float(vs.x), float(vs.y), float(vs.z)])
    if not np.all(np.isfinite(sizes)) or sizes[0] <= 0 or sizes[1] <= 0:
        raise InputError(path, f"voxel size is zero or invalid in the header "
                               f"({sizes[0]:g}, {sizes[1]:g}, {sizes[2]:g} Å)")
    if mrc.data is not None and mrc.data.ndim == 3 and sizes[2] <= 0:
        raise InputError(path, f"voxel size along z is zero or invalid in the header ({sizes[2]:g} Å)")
    if sizes[2] > 0 and not np.allclose(sizes, sizes[0], rtol=1e-3):
        raise InputError(path, f"anisotropic voxel size ({sizes[0]:g}, {sizes[1]:g}, {sizes[2]:g} Å) is not supported")
    return float(sizes[0])


def _origin(mrc: mrcfile.mrcfile.MrcFile, voxel_size_angstrom: float) -> np.ndarray:
    h = mrc.header
    origin = np.array([float(h.origin.x), float(h.origin.y), float(h.origin.z)], dtype=np.float64)
    start = np.array([int(h.nxstart), int(h.nystart), int(h.nzstart)], dtype=np.float64)
    if np.all(origin == 0) and np.any(start != 0):
        origin = start * voxel_size_angstrom
    return origin


def read_map(path: str | os.PathLike) -> MapData:
    """Read an MRC/CCP4 map (optionally gzip/bzip2 compressed).

    Returns:
        :class:`MapData` with ``data`` float32 ``[z, y, x]`` (a 2D file gives
        ``nz = 1``), the voxel size in Å and the world origin (x, y, z) in Å.

    Raises:
        InputError: missing file, not an MRC file, truncated file, complex
            data, zero or anisotropic voxel size, non-finite values.
    """
    path = Path(path)
    with open_mrc_checked(path) as mrc:
        if mrc.data is None:
            raise InputError(path, "MRC file holds no data")
        if np.iscomplexobj(mrc.data):
            raise InputError(path, f"complex MRC data (mode {int(mrc.header.mode)}) is not a density map")
        voxel = _voxel_size(path, mrc)
        origin = _origin(mrc, voxel)
        data = np.array(mrc.data, dtype=np.float32)  # native byte order copy
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise InputError(path, f"expected a 3D map, got {data.ndim} dimensions")
    if not np.all(np.isfinite(data)):
        raise InputError(path, "map contains NaN or infinite values")
    return MapData(data=data, voxel_size_angstrom=voxel, origin_angstrom=origin)


def box_centre_world_angstrom(map_data: MapData) -> np.ndarray:
    """World position (x, y, z, Å) of the box centre voxel ``(M//2)`` per axis.

    Returns:
        float64 array ``(3,)``: ``origin + (M_x//2, M_y//2, M_z//2) * voxel``.
    """
    half = np.array([m // 2 for m in map_data.shape_xyz], dtype=np.float64)
    return np.asarray(map_data.origin_angstrom, dtype=np.float64) + half * map_data.voxel_size_angstrom


def write_map(
    path: str | os.PathLike,
    data: np.ndarray,
    voxel_size_angstrom: float,
    origin_angstrom: Sequence[float] | np.ndarray = (0.0, 0.0, 0.0),
) -> None:
    """Write a float32 map ``[z, y, x]`` atomically.

    Args:
        path: destination ``.mrc`` file (overwritten).
        data: array ``[z, y, x]`` (a 2D array is written as one section).
        voxel_size_angstrom: voxel edge, Å (> 0).
        origin_angstrom: world position (x, y, z, Å) of voxel ``(0, 0, 0)``,
            stored in the header ``origin`` fields (``nxstart`` etc. are 0).
    """
    arr = np.ascontiguousarray(np.asarray(data, dtype=np.float32))
    if arr.ndim not in (2, 3):
        raise ValueError(f"write_map expects a 2D or 3D array, got shape {arr.shape}")
    voxel = float(voxel_size_angstrom)
    if not np.isfinite(voxel) or voxel <= 0:
        raise ValueError(f"voxel_size_angstrom must be positive, got {voxel_size_angstrom}")
    origin = np.asarray(origin_angstrom, dtype=np.float64).reshape(3)
    with atomic_write_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(arr)
            mrc.voxel_size = voxel
            mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (float(v) for v in origin)
            mrc.header.nxstart = mrc.header.nystart = mrc.header.nzstart = 0
            mrc.header.label[0] = b"gmmplat".ljust(80)  # no timestamp: same input, same bytes
            mrc.update_header_stats()
