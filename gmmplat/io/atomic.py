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
    folder = final.parent if str(final.parent) else Path(".")
    # The temporary file is not created here: the writer creates it, with the
    # usual permissions (mkstemp would make it private, 0600).
    tmp = folder / f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{final.suffix}"
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
