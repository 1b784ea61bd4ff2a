"""Lazy, memory-mapped access to the particle images of a particle table.

:class:`StackReader` turns rows of a normalized particle table
(:mod:`gmmplat.io.star`) into float32 images ``(B, M, M)`` (``[y, x]`` per
image, pixel values as stored, no normalization). Each stack is opened with
``mrcfile.mmap`` so reading one image touches only that image's pages, and at
most ``max_open`` stacks stay open (least recently used is closed first).

Each stack is validated once, when first opened: it exists and is a complete
MRC file, its images are square and of the same size as the other stacks' (and
as ``box_size`` where the table gives it), every image the table asks of it
exists, and the table's pixel size agrees with the header voxel size within 1%.  The
table's pixel size is the one used: a header holding an unset value (0, or 1 Å with the
cell equal to the grid) or one the user overrides (``trust_pixel_size`` of the particles,
``--trust-star-pixel-size``) gives one printed note instead of an error.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gmmplat.errors import InputError
from gmmplat.io.mrc import open_mrc_checked

__all__ = ["StackInfo", "StackReader", "ParticleStack"]

PIXEL_SIZE_RTOL = 0.01


@dataclass(frozen=True)
class StackInfo:
    """Header facts of one validated stack.

    Attributes:
        path: the stack file.
        n_images: number of images (a 2D file counts as one).
        box_size: image edge M, pixels.
        voxel_size_angstrom: header pixel size, Å (0 when the header has none).
    """

    path: str
    n_images: int
    box_size: int
    voxel_size_angstrom: float


class StackReader:
    """Images of a particle table, read lazily from memory-mapped stacks.

    Args:
        particles: a normalized particle table (columns ``stack_path``,
            ``image_index``, ``pixel_size_angstrom``, optionally ``box_size``)
            or a :class:`~gmmplat.io.star.ParticleStar` (whose path then
            appears in pixel-size error messages).
        max_open: most stacks kept open at once (LRU).
        check_pixel_size: compare the table's pixel size with stack headers.

    ``reader[i]`` with an int, slice, list or integer array of table rows
    (positions, not index labels) returns float32 ``(B, M, M)``, B = number
    of rows asked for (1 for an int).
    """

    def __init__(self, particles: Any, max_open: int = 32, check_pixel_size: bool = True):
        table = particles.table if hasattr(particles, "table") else particles
        self.star_path: str | None = os.fspath(particles.path) if hasattr(particles, "path") else None
        if not isinstance(table, pd.DataFrame):
            raise TypeError("StackReader needs a particle table (DataFrame) or a ParticleStar")
        if max_open < 1:
            raise ValueError("max_open must be >= 1")
        self.max_open = int(max_open)
        self.check_pixel_size = check_pixel_size
        self.trust_pixel_size = bool(getattr(particles, "trust_pixel_size", False))
        self._pixel_noted = False
        codes, uniques = pd.factorize(table["stack_path"].astype(str), sort=False)
        self._stack_paths: list[str] = [str(u) for u in uniques]
        self._codes = np.asarray(codes, dtype=np.int64)
        self._image_index = table["image_index"].to_numpy(dtype=np.int64)
        self._pixel = table["pixel_size_angstrom"].to_numpy(dtype=np.float64)
        box = table["box_size"].to_numpy(dtype=np.float64) if "box_size" in table else np.full(len(table), np.nan)
        self._table_box = box
        order = np.argsort(self._codes, kind="stable")  # rows of each stack, found once
        self._rows_by_code = np.split(order, np.searchsorted(self._codes[order], np.arange(1, len(uniques))))
        self._info: dict[int, StackInfo] = {}
        self._open: OrderedDict[int, Any] = OrderedDict()
        self._box_size: int | None = None
        self._box_source: str | None = None

    # ------------------------------------------------------------------ public
    def __len__(self) -> int:
        return len(self._codes)

    @property
    def stack_paths(self) -> list[str]:
        """Distinct stack files, in order of first use in the table."""
        return list(self._stack_paths)

    @property
    def box_size(self) -> int:
        """Image edge M in pixels (opens the first stack if none is open yet)."""
        if self._box_size is None and len(self):
            self._handle(int(self._codes[0]))
        if self._box_size is None:
            raise ValueError("empty particle table has no box size")
        return self._box_size

    def info(self, stack_path: str | os.PathLike) -> StackInfo:
        """Validated header facts of one stack of this table (opens it once)."""
        code = self._stack_paths.index(os.fspath(stack_path))
        self._handle(code)
        return self._info[code]

    def validate_all(self) -> None:
        """Open and validate every stack now (instead of on first read)."""
        for code in range(len(self._stack_paths)):
            self._handle(code)

    def __getitem__(self, rows: int | slice | list[int] | np.ndarray) -> np.ndarray:
        sel = np.arange(len(self))[rows]
        sel = np.atleast_1d(np.asarray(sel, dtype=np.int64))
        if sel.size == 0:
            m = self.box_size if len(self) else 0
            return np.empty((0, m, m), dtype=np.float32)
        codes = self._codes[sel]
        out: np.ndarray | None = None
        for code in np.unique(codes):  # stack by stack, each opened once per call
            where = np.flatnonzero(codes == code)
            data = self._handle(int(code))
            block = np.asarray(data[self._image_index[sel[where]]], dtype=np.float32)
            if out is None:
                out = np.empty((sel.size, *block.shape[1:]), dtype=np.float32)
            out[where] = block
        return out

    def close(self) -> None:
        """Close every open stack."""
        while self._open:
            _, mrc = self._open.popitem(last=False)
            mrc.close()

    def __enter__(self) -> StackReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict:  # picklable for worker processes: open files stay behind
        state = self.__dict__.copy()
        state["_open"] = OrderedDict()
        return state

    # ----------------------------------------------------------------- private
    def _handle(self, code: int) -> np.ndarray:
        """Image array ``(n, M, M)`` (memmap) of stack ``code``, opening and validating it if needed."""
        if code in self._open:
            self._open.move_to_end(code)
            mrc = self._open[code]
        else:
            path = self._stack_paths[code]
            if not os.path.lexists(path):  # the usual cause: a particle file moved away from its project
                named = f" (a stack named in {self.star_path})" if self.star_path else ""
                raise InputError(path, f"file not found{named}; relative image paths start from the particle "
                                       "file's folder or one of its 3 parents: give the project folder with --datadir")
            mrc = open_mrc_checked(path, mmap=True)
            try:
                if code not in self._info:
                    self._info[code] = self._validate(code, mrc)
            except BaseException:
                mrc.close()
                raise
            self._open[code] = mrc
            while len(self._open) > self.max_open:
                _, old = self._open.popitem(last=False)
                old.close()
        data = mrc.data
        return data[None] if data.ndim == 2 else data

    def _validate(self, code: int, mrc: Any) -> StackInfo:
        path = self._stack_paths[code]
        data = mrc.data
        if data is None or data.ndim not in (2, 3):
            raise InputError(path, f"not an image stack (data shape {None if data is None else data.shape})")
        if np.iscomplexobj(data):
            raise InputError(path, f"complex MRC data (mode {int(mrc.header.mode)}) is not a particle stack")
        n_images = 1 if data.ndim == 2 else int(data.shape[0])
        ny, nx = (int(s) for s in data.shape[-2:])
        if ny != nx:
            raise InputError(path, f"images are not square ({nx} x {ny} pixels)")
        rows = self._rows_by_code[code]
        wanted = self._image_index[rows]
        if wanted.size and wanted.max() >= n_images:
            raise InputError(path, f"image {int(wanted.max()) + 1} requested (1-based, as in rlnImageName; "
                                   f"blob/idx {int(wanted.max())} in a .cs file) "
                                   f"but the stack holds {n_images} image(s)")
        if self._box_size is None:
            self._box_size, self._box_source = nx, path
        elif nx != self._box_size:
            raise InputError(path, f"images are {nx} x {nx} pixels but {self._box_source} holds "
                                   f"{self._box_size} x {self._box_size}")
        table_box = self._table_box[rows]
        table_box = table_box[np.isfinite(table_box)]
        if table_box.size and np.any(table_box != nx):
            raise InputError(path, f"images are {nx} x {nx} pixels but the particle table says rlnImageSize "
                                   f"{int(table_box[table_box != nx][0])}")
        voxel = float(mrc.voxel_size.x)
        if self.check_pixel_size and rows.size:
            self._check_pixel_size(path, voxel, self._pixel[rows])
        return StackInfo(path=path, n_images=n_images, box_size=nx, voxel_size_angstrom=voxel)


    def _check_pixel_size(self, path: str, voxel: float, pixel: np.ndarray) -> None:
        """The particle file's pixel size is used (as RELION does).  A header that disagrees is refused,
        unless it holds an unset value (0, or 1 Å: the cell equal to the grid, what writers leave when
        they set no pixel size) or the user trusts the particle file: then one note is printed."""
        bad = np.flatnonzero(np.abs(pixel - voxel) > PIXEL_SIZE_RTOL * max(voxel, 1e-12))
        if not bad.size:
            return
        source = f"{self.star_path}" if self.star_path else "the particle table"
        unset = voxel <= 0 or voxel == 1.0
        if not (unset or self.trust_pixel_size):
            raise InputError(path, f"pixel size {pixel[bad[0]]:g} Å in {source} disagrees with the stack header "
                                   f"voxel size {voxel:g} Å (more than 1%); pass --trust-star-pixel-size to use "
                                   "the particle file's value")
        if not self._pixel_noted:  # once per reader: every stack of a job is written alike
            why = ("is the unset value (cell = grid)" if voxel == 1.0 else "is unset (0)") if unset \
                else "disagrees (--trust-star-pixel-size)"
            print(f"note: {path}: header pixel size {voxel:g} Å {why}; using {pixel[bad[0]]:g} Å from {source} "
                  "for this and any such stack", flush=True)
            self._pixel_noted = True


#: Alias: the same reader under the name used in design notes.
ParticleStack = StackReader
