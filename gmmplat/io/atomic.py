"""Atomic file writes.

Every file gmmplat writes goes first to a temporary name in the destination
folder and is renamed onto the final name with :func:`os.replace` only once it
is complete, so a crash or an error never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_write_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    The temporary path does not exist yet when yielded (the writer creates
    it, with the usual permissions). It keeps ``path``'s suffix, since some
    writers choose the format from it. On an exception inside the block the temporary file is deleted
    and the exception propagates; ``path`` is left untouched.

    Usage::

        with atomic_write_path("out.mrc") as tmp:
            write_something(tmp)
    """
    final = Path(path)
    tmp = _temporary_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json(path: str | os.PathLike, obj, default=None) -> None:
    """``obj`` as indented JSON (``default``: :func:`json.dumps`'s, for values JSON lacks), written atomically."""
    import json

    with atomic_write_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, default=default) + "\n")


def save_npy(path: str | os.PathLike, array) -> None:
    """``np.save`` of ``array`` to exactly ``path`` (no ``.npy`` appended), written atomically."""
    import numpy as np

    with atomic_write_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)


def _temporary_name(final: Path) -> Path:
    """A fresh hidden name beside ``final`` that keeps its suffix.

    The file is not created here: the writer creates it, with the usual permissions
    (mkstemp would make it private, 0600)."""
    folder = final.parent if str(final.parent) else Path(".")
    return folder / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{final.suffix}"


@contextlib.contextmanager
def atomic_write_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """:func:`atomic_write_path` for files that belong together (a figure and its table).

    Yields one temporary path per destination; all are renamed onto their destinations
    only after the block has written every one.  Missing folders are created on entry;
    on an exception the temporary files and the folders created here are deleted, so a
    failure leaves neither a partial set nor an empty folder, and the destinations as
    they were.
    """
    finals = [Path(p) for p in paths]
    created: list[Path] = []
    try:
        for final in finals:
            missing, folder = [], final.absolute().parent
            while not folder.exists():
                missing.append(folder)
                folder = folder.parent
            for d in reversed(missing):
                d.mkdir()
                created.append(d)
        tmps = [_temporary_name(f) for f in finals]
        try:
            yield tmps
            for tmp, final in zip(tmps, finals):
                os.replace(tmp, final)
        except BaseException:
            for tmp in tmps:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            raise
    except BaseException:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def check_output_path(path: str | os.PathLike, option: str = "--out", *, folder: bool = True,
                      create_parents: bool = True) -> Path:
    """Refuse an output path that cannot be written, before any work (one-line InputError).

    ``folder``: the path is a folder to be created (else a file).  Refused: a file where a
    folder is wanted (or a folder where a file is), a parent that is a file, a missing
    parent folder when ``create_parents`` is False, an existing ancestor without write
    permission.
    """
    from ..errors import InputError

    p = Path(path)
    if folder and p.exists() and not p.is_dir():
        raise InputError(p, f"{option} is an existing file, not a folder")
    if not folder and p.is_dir():
        raise InputError(p, f"{option} is an existing folder, not a file")
    parent = p.absolute().parent
    anc = parent
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir():
        raise InputError(p, f"{option}: {anc} is a file, not a folder")
    if not create_parents and not parent.is_dir():
        raise InputError(p, f"{option}: folder {parent} does not exist")
    target = p if p.is_dir() else anc
    if not os.access(target, os.W_OK | os.X_OK):
        raise InputError(p, f"{option}: no permission to write in {target}")
    return p


@contextlib.contextmanager
def staged_folder(path: str | os.PathLike, *, overwrite: bool = False, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary sibling folder; on success it replaces ``path`` whole (rename).

    A non-empty ``path`` is refused (InputError) unless ``overwrite``; then the old
    folder is removed only after the new one is complete.  On any exception the
    temporary folder is deleted and ``path`` is left as it was, so an error never leaves
    partial results, and an empty folder is never created.
    """
    import shutil

    from ..errors import InputError

    final = check_output_path(path, option)
    if final.is_dir() and any(final.iterdir()) and not overwrite:
        raise InputError(final, f"{option} is not empty; pass --overwrite to replace it, or choose another folder")
    final.absolute().parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.{uuid.uuid4().hex[:12]}"
    tmp = final.absolute().parent / f".{final.name}.{tag}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.absolute().parent / f".{final.name}.{tag}.old"
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
