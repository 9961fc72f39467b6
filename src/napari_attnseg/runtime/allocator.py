"""Keep glibc's malloc from giving tile-sized blocks back to the kernel after every forward pass.

glibc serves blocks above a threshold with ``mmap`` and returns freed memory at the top of its heap to
the kernel, so every forward pass page-faults its activations in again. On this project's build
machine (a 2-core VM) a 2048² image in 704² tiles took ~50,000 page faults and 0.82-1.12 s per
prediction; with the settings below it took 0-12,000 faults and 0.77-0.82 s. PyTorch's CPU tuning
guide gets the same effect by preloading jemalloc or tcmalloc, which a napari user cannot be asked to
do. The settings are process-wide and made once: blocks up to 32 MB come from the heap, and up to
256 MB of freed heap is kept for the next pass. ``ATTNSEG_MALLOC_TUNING=0`` turns this off.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

# mallopt parameters, from glibc's malloc.h; both must be set: setting only one switches off glibc's
# own dynamic threshold and makes matters worse (measured: 730,000 faults a prediction)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024**2  # glibc's largest allowed value on 64-bit systems
TRIM_THRESHOLD = 256 * 1024**2

_STATE = {"done": False, "tuned": False}


def keep_freed_memory() -> bool:
    """Apply the settings above once per process; True if glibc took them."""
    if _STATE["done"]:
        return _STATE["tuned"]
    _STATE["done"] = True
    if os.environ.get("ATTNSEG_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, say)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    tuned = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("malloc keeps freed memory for the next forward pass: %s", tuned)
    _STATE["tuned"] = tuned
    return tuned
