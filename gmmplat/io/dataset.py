"""Particles for training: a lazy, symmetry-expanded dataset and deterministic batches.

:class:`ParticleDataset` reads a RELION particle STAR file (:mod:`gmmplat.io.star`) or
a cryoSPARC ``.cs`` file (:mod:`gmmplat.io.cryosparc`)
and streams images from the memory-mapped stacks (:class:`gmmplat.io.StackReader`).
Only the per-particle metadata (poses, shifts, CTF, the STAR table: under 1 kB a
particle) is held in memory; images are read when a batch asks for them and kept in a
bounded LRU cache (``cache_mb``).  The stacks are unmapped again after every
read (``release_mb=0``, the default; or after that many MB): a page fault on a
memory-mapped file maps whole runs of pages (kernel fault-around, large folios),
so a mapping left open accumulates the stacks in the process's resident set.
Unmapped, the resident memory stays bounded however large the dataset is (the
pages stay in the kernel's page cache; reopening costs well under a millisecond
per stack, benchmarks/bench_train.py).

**Items and symmetry expansion.**  With a point group of ``K`` operators
``R_k`` (identity first, :func:`gmmplat.physics.geometry.symmetry_operators`), every
particle appears ``K`` times, at rotation ``A @ R_k`` (RELION's
``relion_particle_symmetry_expand``; shifts and CTF unchanged).  Item ``i`` of
the dataset is particle ``i // K`` (its row in the STAR file), copy ``i % K``:
the copies of one particle are adjacent, ``len(dataset) = n_particles * K``.

**Splits** (:meth:`ParticleDataset.split`) are drawn per *particle* so that the
symmetry copies of a particle stay on the same side, and depend only on the seed.

**Checks** (one-line :class:`gmmplat.errors.InputError`): images with NaN/inf
values or constant images are reported by STAR row (0-based) when a batch reads
them, and all at once by :meth:`ParticleDataset.check_images`; a GMM whose box or
pixel size differs from the particles' is refused by :meth:`ParticleDataset.check_gmm`.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..physics.ctf import CTFParams
from ..physics.geometry import euler_to_matrix, symmetry_operators

__all__ = ["Batch", "ParticleDataset", "batch_order", "shard"]

PIXEL_SIZE_RTOL = 0.005


@dataclass
class Batch:
    """One batch of particle images and their metadata.

    Attributes:
        images: float32 ``(B, M, M)`` ``[y, x]``, contrast already inverted if declared.
        rotations: float32 ``(B, 3, 3)`` RELION matrices ``A @ R_k``.
        shifts_angstrom: float32 ``(B, 2)`` rlnOriginX/YAngst.
        ctf: :class:`CTFParams`, each field ``(B,)`` float64.
        index: long ``(B,)`` row of the particle in the STAR file (0-based).
        sym_index: long ``(B,)`` symmetry copy ``k`` (0 without expansion).
    """

    images: torch.Tensor
    rotations: torch.Tensor
    shifts_angstrom: torch.Tensor
    ctf: CTFParams
    index: torch.Tensor
    sym_index: torch.Tensor

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def to(self, device) -> "Batch":
        return Batch(
            self.images.to(device), self.rotations.to(device), self.shifts_angstrom.to(device),
            self.ctf.to(device), self.index.to(device), self.sym_index.to(device),
        )


class _ImageCache:
    """LRU cache of single images ``(M, M)`` keyed by STAR row, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.bytes = 0
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, row: int) -> np.ndarray | None:
        img = self._items.get(row)
        if img is not None:
            self._items.move_to_end(row)
        return img

    def put(self, row: int, img: np.ndarray) -> None:
        if self.max_bytes <= 0 or img.nbytes > self.max_bytes or row in self._items:
            return
        self._items[row] = img
        self.bytes += img.nbytes
        while self.bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.nbytes

    def __len__(self) -> int:
        return len(self._items)


def _bad_images(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of images with non-finite values, and of constant images, in ``(B, M, M)``."""
    flat = images.reshape(images.shape[0], -1)
    finite = np.isfinite(flat).all(axis=1)
    constant = finite & (flat.max(axis=1) == flat.min(axis=1))
    return np.flatnonzero(~finite), np.flatnonzero(constant)


def _rows_text(rows: Sequence[int], limit: int = 10) -> str:
    """0-based table rows as the 1-based particle rows of the STAR file (as STAR parse errors count)."""
    rows = [int(r) + 1 for r in rows]
    text = ", ".join(str(r) for r in rows[:limit])
    return text + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


class ParticleDataset:
    """Particles of a STAR file, streamed from their stacks, optionally symmetry-expanded.

    Args:
        star_path: RELION 3.0/3.1 particle STAR file or cryoSPARC ``.cs`` file with
            poses and CTF, or a :class:`gmmplat.io.particles.ParticleSource` (the file
            with its passthrough, data folder and CTF values it lacks).
        invert_contrast: multiply every image by -1 (stacks with dark protein;
            declared by the user, never guessed).
        symmetry: point group for symmetry expansion ("C1", "Cn", "Dn").
        cache_mb: bound of the in-memory image cache (MB; 0 disables it).
        release_mb: unmap the stacks after this much reading (MB); 0: after every read.

    Attributes: ``n_particles``, ``n_sym`` (K), ``box`` (M), ``pixel_size_angstrom``,
    ``operators`` (K, 3, 3) float64, ``table`` (the normalized particle table),
    ``notes`` (values the reader took from options, one line each).
    """

    def __init__(self, star_path: str | os.PathLike, invert_contrast: bool = False, symmetry: str = "C1",
                 cache_mb: float = 256.0, release_mb: float = 0.0):
        from .particles import ParticleSource
        from .stacks import StackReader

        source = star_path if isinstance(star_path, ParticleSource) else ParticleSource(os.fspath(star_path))
        self.star_path = os.fspath(source.path)
        star = source.read(require_poses=True, require_ctf=True)
        self.table = star.table
        self.notes = list(star.notes)
        self.invert_contrast = bool(invert_contrast)
        self.symmetry = symmetry.strip().upper()
        self.operators = symmetry_operators(self.symmetry)  # (K, 3, 3) float64, ConfigError if unknown
        self._reader = StackReader(star)
        self.n_particles = len(self.table)
        self.n_sym = int(self.operators.shape[0])
        pixel = self.table["pixel_size_angstrom"].to_numpy(dtype=np.float64)
        if np.any(np.abs(pixel - pixel[0]) > PIXEL_SIZE_RTOL * pixel[0]):
            raise InputError(self.star_path, f"particles have different pixel sizes ({pixel.min():g} to "
                                             f"{pixel.max():g} Å); one pixel size is needed for training")
        self.pixel_size_angstrom = float(pixel[0])
        self.box = int(self._reader.box_size)
        angles = [self.table[c].to_numpy(dtype=np.float64, copy=True) for c in ("rot_deg", "tilt_deg", "psi_deg")]
        A = euler_to_matrix(*angles)
        self._rotations = A  # (n, 3, 3) float64; copies are formed per batch (A @ R_k)
        self._shifts = torch.as_tensor(
            self.table[["shift_x_angstrom", "shift_y_angstrom"]].to_numpy(dtype=np.float64)
        ).to(torch.float32)
        self._ctf = CTFParams(**{f.name: torch.tensor(self.table[f.name].to_numpy(dtype=np.float64, copy=True))
                                 for f in fields(CTFParams)})
        self._poses = None  # per-item corrections (gmmplat.refine.poses.PoseCorrections), applied in get_batch
        self._cache = _ImageCache(int(cache_mb * 2**20))
        self._release_bytes = int(release_mb * 2**20)
        self._bytes_since_release = 0

    # ---------------------------------------------------------------- basics
    def __len__(self) -> int:
        return self.n_particles * self.n_sym

    def particle_of(self, items) -> tuple[np.ndarray, np.ndarray]:
        """Item indices -> (STAR rows, symmetry copies)."""
        items = np.asarray(items, dtype=np.int64)
        return items // self.n_sym, items % self.n_sym

    def items_of(self, particles) -> np.ndarray:
        """STAR rows -> all their item indices (copies adjacent), ``(len(particles) * K,)``."""
        p = np.asarray(particles, dtype=np.int64)
        return (p[:, None] * self.n_sym + np.arange(self.n_sym)[None, :]).reshape(-1)

    # ---------------------------------------------------------------- images
    def read_images(self, rows) -> np.ndarray:
        """Images of STAR rows ``(B,)`` -> float32 ``(B, M, M)`` (cached, checked, inverted if declared)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((rows.size, self.box, self.box), dtype=np.float32)
        missing = []
        for j, r in enumerate(rows.tolist()):
            img = self._cache.get(r)
            if img is None:
                missing.append(j)
            else:
                out[j] = img
        if missing:
            miss_rows = rows[missing]
            uniq, inverse = np.unique(miss_rows, return_inverse=True)
            block = self._reader[uniq]
            self._check_block(block, uniq)
            if self.invert_contrast:
                np.negative(block, out=block)
            out[missing] = block[inverse]
            for r, img in zip(uniq.tolist(), block):
                self._cache.put(r, img.copy())
            self._bytes_since_release += block.nbytes
            if self._bytes_since_release >= self._release_bytes:
                self._reader.close()  # unmaps the stacks: their pages leave this process's RSS
                self._bytes_since_release = 0
        return out

    def _check_block(self, block: np.ndarray, rows: np.ndarray) -> None:
        nonfinite, constant = _bad_images(block)
        problems = []
        if nonfinite.size:
            problems.append(f"NaN/inf values in the image(s) of STAR row(s) {_rows_text(rows[nonfinite])}")
        if constant.size:
            problems.append(f"constant image(s) at STAR row(s) {_rows_text(rows[constant])}")
        if problems:
            raise InputError(self.star_path, "; ".join(problems) + " (particle rows counted from 1)")

    def check_images(self, chunk: int = 1024) -> None:
        """Scan every image once; raise one InputError listing all NaN/inf and constant images."""
        nonfinite, constant = [], []
        for start in range(0, self.n_particles, chunk):
            rows = np.arange(start, min(start + chunk, self.n_particles))
            nf, const = _bad_images(self._reader[rows])
            nonfinite += rows[nf].tolist()
            constant += rows[const].tolist()
        self._reader.close()
        problems = []
        if nonfinite:
            problems.append(f"{len(nonfinite)} image(s) with NaN/inf values at STAR row(s) {_rows_text(nonfinite)}")
        if constant:
            problems.append(f"{len(constant)} constant image(s) at STAR row(s) {_rows_text(constant)}")
        if problems:
            raise InputError(self.star_path, "; ".join(problems) + " (particle rows counted from 1)")

    def check_gmm(self, gmm, gmm_path: str | os.PathLike | None = None) -> None:
        """Refuse a GMM whose box or pixel size differs from the particles'."""
        if int(gmm.box) != self.box or abs(gmm.pixel_size_angstrom - self.pixel_size_angstrom) > (
            PIXEL_SIZE_RTOL * self.pixel_size_angstrom
        ):
            raise InputError(gmm_path, f"GMM box {int(gmm.box)} px at {gmm.pixel_size_angstrom:g} Å/px disagrees "
                                       f"with the particles of {self.star_path} ({self.box} px at "
                                       f"{self.pixel_size_angstrom:g} Å/px)")

    # --------------------------------------------------------------- batches
    def get_batch(self, items) -> Batch:
        """Items ``(B,)`` -> :class:`Batch` (images read lazily)."""
        items = np.asarray(items, dtype=np.int64)
        if items.size and (items.min() < 0 or items.max() >= len(self)):
            raise IndexError(f"item out of range 0..{len(self) - 1}")
        rows, copies = self.particle_of(items)
        rows_t, copies_t = torch.from_numpy(rows), torch.from_numpy(copies)
        rot = self._rotations[rows_t] @ self.operators[copies_t]
        shifts = self._shifts[rows_t]
        if self._poses is not None:
            rot = self._poses.matrices(items) @ rot
            shifts = shifts + torch.as_tensor(self._poses.shift_angstrom[items], dtype=torch.float32)
        return Batch(
            images=torch.from_numpy(self.read_images(rows)),
            rotations=rot.to(torch.float32),
            shifts_angstrom=shifts,
            ctf=self._ctf.subset(rows_t),
            index=rows_t,
            sym_index=copies_t,
        )

    def set_pose_corrections(self, corrections) -> None:
        """Apply per-item pose corrections (:class:`gmmplat.refine.poses.PoseCorrections`, ``len(self)`` items)
        to every batch from now on: rotation ``exp([ω]×) A R_k``, origin ``+ δ``; None: the stated poses."""
        if corrections is not None and len(corrections.rotvec_rad) != len(self):
            raise ValueError(f"pose corrections for {len(corrections.rotvec_rad)} items, dataset has {len(self)}")
        self._poses = corrections

    @property
    def pose_corrections(self):
        """The corrections applied to the batches (None: the stated poses)."""
        return self._poses

    def split(self, validation_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Train and validation items, split by particle (copies stay together), sorted.

        ``round(validation_fraction * n_particles)`` particles (at least one when the
        fraction is positive and there are two or more particles) go to validation,
        chosen by a permutation that depends only on ``seed``.
        """
        if not 0.0 <= validation_fraction < 1.0:
            raise ValueError("validation_fraction must be in [0, 1)")
        n = self.n_particles
        n_val = int(round(validation_fraction * n))
        if validation_fraction > 0 and n >= 2:
            n_val = max(1, min(n_val, n - 1))
        perm = np.random.default_rng([int(seed), 0x5EED]).permutation(n)
        val = np.sort(perm[:n_val])
        train = np.sort(perm[n_val:])
        return self.items_of(train), self.items_of(val)

    def iter_batches(self, items, batch_size: int) -> Iterator[Batch]:
        """Batches over ``items`` in the given order (no shuffling here: see :func:`batch_order`)."""
        items = np.asarray(items, dtype=np.int64)
        for start in range(0, items.size, batch_size):
            yield self.get_batch(items[start : start + batch_size])

    def loader(self, batches: Sequence[np.ndarray], num_workers: int = 0) -> Iterator[Batch]:
        """Batches of precomputed item arrays; with ``num_workers > 0`` read ahead in worker processes."""
        if num_workers <= 0:
            return (self.get_batch(b) for b in batches)
        return iter(torch.utils.data.DataLoader(
            _BatchList(self, list(batches)), batch_size=None, shuffle=False,
            num_workers=num_workers, collate_fn=_identity, persistent_workers=False,
        ))

    def close(self) -> None:
        self._reader.close()

    def __getstate__(self) -> dict:  # worker processes start with an empty cache
        state = self.__dict__.copy()
        state["_cache"] = _ImageCache(self._cache.max_bytes)
        return state


class _BatchList(torch.utils.data.Dataset):
    def __init__(self, dataset: ParticleDataset, batches: list[np.ndarray]):
        self.dataset, self.batches = dataset, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> Batch:
        return self.dataset.get_batch(self.batches[i])


def _identity(x):
    return x


def batch_order(items, batch_size: int, seed_words: Sequence[int], shuffle: bool = True,
                min_last: int = 1) -> list[np.ndarray]:
    """Split ``items`` into batches, shuffled by a generator seeded with ``seed_words`` only.

    The order is a function of ``(items, batch_size, seed_words)`` and nothing
    else, so an interrupted run replays the same epoch.  A last batch smaller
    than ``min_last`` is dropped (distributed training needs one item per rank).
    """
    items = np.asarray(items, dtype=np.int64)
    if shuffle:
        items = items[np.random.default_rng([int(w) for w in seed_words]).permutation(items.size)]
    batches = [items[s : s + batch_size] for s in range(0, items.size, batch_size)]
    if batches and batches[-1].size < min_last:
        batches.pop()
    return batches


def shard(batch_items, rank: int, world_size: int):
    """The part of a global batch (array or tensor, along its first axis) that process ``rank`` of
    ``world_size`` handles (strided): the one place the data-parallel split is written."""
    if isinstance(batch_items, torch.Tensor):
        return batch_items[rank::world_size]
    return np.asarray(batch_items)[rank::world_size]
