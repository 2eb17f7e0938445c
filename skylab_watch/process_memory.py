"""Process-wide memory settings, made once at start, before any thread exists.

A night of deliveries made RSS climb from 54 MB to 400 MB while the live
data stayed small. Two causes, both outside Python's own objects:

- glibc gives each thread that allocates concurrently its own malloc arena
  (up to eight per core), and an arena seldom hands freed memory back. The
  worker pools plus libvips' own threads filled many arenas with freed image
  buffers. `limit_malloc_arenas` caps them at MALLOC_ARENAS through
  `mallopt(M_ARENA_MAX)`, what `MALLOC_ARENA_MAX=2` in the environment does,
  without a re-exec; it must run before threads start, or the arenas they
  already made stay.
- libvips keeps finished operations (and their pixels) in a cache and runs
  one worker thread per core for each image. `bound_libvips` switches the
  cache off and bounds the threads per image (LIBVIPS_CONCURRENCY, unless
  VIPS_CONCURRENCY says otherwise): photos are already worked on in
  parallel by the daemon's pools.

Figures and how they were measured: `bench/memory.py` and the README's
"Memory and idle CPU".
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger("skylab_watch")

MALLOC_ARENAS = 2
"""glibc malloc arenas at most: the main one and one shared by every other thread."""

LIBVIPS_CONCURRENCY = 4
"""libvips worker threads per image at most (the systemd unit's VIPS_CONCURRENCY=4 says the same)."""

LIBVIPS_CACHE_MEMORY = 16 * 2**20
"""Bytes libvips' operation cache may hold, should anything switch it on again (it is off)."""

_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas at `arenas`; return True if the cap is in force.

    Does nothing (False) when MALLOC_ARENA_MAX is set, since the person who
    set it chose, or when the C library is not glibc (musl has no arenas).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it, and only glibc knows M_ARENA_MAX
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))


def bound_libvips(concurrency: int = LIBVIPS_CONCURRENCY) -> None:
    """Switch libvips' operation cache off and run at most `concurrency` threads per image.

    VIPS_CONCURRENCY in the environment wins over `concurrency`: libvips
    read it at start and it is the documented way to tune libvips.
    """
    import pyvips  # here, not at the top: `skylab-watch status` and `--help` never load libvips

    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(LIBVIPS_CACHE_MEMORY)
    if not os.environ.get("VIPS_CONCURRENCY"):
        pyvips.concurrency_set(max(1, min(concurrency, os.cpu_count() or 1)))
