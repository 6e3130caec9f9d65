"""Keep the multi-camera runtime's memory flat.

glibc's malloc gives threads that allocate at the same time heap arenas of their own (up to
eight per core). The runtime runs two threads per camera, each allocating and freeing
frame-sized buffers, so freed memory ends up spread over many arenas and resident memory
creeps up for minutes. Two arenas keep it flat (measured in docs/benchmarks.md) at no cost
in speed that the benchmarks can see.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

#: `M_ARENA_MAX` from glibc's <malloc.h>.
_M_ARENA_MAX = -8
#: Arenas the runtime asks for.
RUNTIME_ARENAS = 2


def limit_malloc_arenas(arenas: int = RUNTIME_ARENAS) -> bool:
    """Ask glibc for at most `arenas` malloc arenas; True when the limit was set.

    Does nothing (False) off Linux, without glibc, or when the operator has already chosen
    with the MALLOC_ARENA_MAX environment variable. Call it before starting threads.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(_M_ARENA_MAX, arenas))
    if not ok:
        log.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)
    return ok
