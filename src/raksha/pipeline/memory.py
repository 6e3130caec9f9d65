"""Keep the resident memory of a long run steady: large buffers go straight back to the OS.

Every analysed frame allocates and frees buffers of megabytes (a 1080p BGR frame is 6 MB).
glibc serves such blocks with mmap at first, but after the first one is freed it raises its
mmap threshold to that size, and from then on serves them from the heap, which it trims only
now and then: resident memory then swings by tens of MB and creeps up (measured: two bands
12 MiB apart, docs/benchmarks.md). A fixed threshold keeps every block of 1 MiB or more on
mmap, returned to the OS when freed: memory stays flat and about 15 MiB lower, at no
measurable CPU cost.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

#: glibc's `mallopt` parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD).
M_MMAP_THRESHOLD = -3
#: Blocks at least this large are always mmapped (and unmapped when freed).
MMAP_THRESHOLD_BYTES = 1 << 20


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Set glibc's mmap threshold to `nbytes` (which also stops its dynamic raising). Returns
    False, changing nothing, where the C library is not glibc (macOS, musl) or refuses."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, nbytes))
    if not ok:
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) refused", nbytes)
    return ok
