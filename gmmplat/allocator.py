"""Keep freed memory for reuse: glibc allocator settings for the training and refinement loops.

Every training step and refinement batch allocates the same few large temporaries (the
projector's factors, ``(B, N, K)`` complex, 1–30 MB each) and frees them again.  glibc's
``malloc`` serves blocks above its mmap threshold (128 kB at start, raised on the fly up to 32 MB)
with fresh ``mmap`` pages, and returns the top of its heap to the system whenever more than the
trim threshold lies free there.  Either way the next step's tensors start on new pages that the
kernel must fault in and zero, which on the sample data cost more than the trigonometry of the
factors (docs/performance.md, "Allocator").

:func:`keep_freed_memory` sets, once per process,

* ``M_MMAP_THRESHOLD`` = 32 MB (glibc's largest): blocks up to that come from the heap;
* ``M_TRIM_THRESHOLD`` = 1 GiB: up to that much freed memory stays with the process.

The price is resident memory that does not shrink between steps (at most the trim threshold
more than the peak of one step).  Results are unchanged: only where memory comes from changes.
Elsewhere than on glibc (macOS, Windows, musl) it does nothing.  ``GMMPLAT_KEEP_FREED_MEMORY=0``
in the environment turns it off, as do glibc's own ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TRIM_THRESHOLD_`` variables (those settings are then the user's).
"""
from __future__ import annotations

import ctypes
import os
import platform

#: glibc ``<malloc.h>`` parameter numbers for ``mallopt``.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD_BYTES = 32 * 2**20
TRIM_THRESHOLD_BYTES = 2**30
ENV_SWITCH = "GMMPLAT_KEEP_FREED_MEMORY"
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

_state: dict = {"done": False, "applied": False}


def keep_freed_memory() -> bool:
    """Apply the settings of the module docstring (once per process); whether they are in force."""
    if _state["done"]:
        return _state["applied"]
    _state["done"] = True
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if any(v in os.environ for v in GLIBC_VARIABLES) or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1 and ok
    _state["applied"] = ok
    return ok
