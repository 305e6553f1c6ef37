"""Freed memory kept for reuse during a step, and given back when it ends (glibc only).

glibc serves each allocation over its mmap threshold (128 KiB, sliding up to 32 MiB) with a
fresh mapping and unmaps it when freed, so a step that makes and drops window-sized arrays
one after another (the clustering: the window's vectors read, blended, reduced) faults every
page of each anew: `topic_clusters` on the first 100k-event day spent 6.9-7.4 s of its 26-28
in system time, 3.0-3.5 s of 20-25 with this (SCALE.md, "Freed memory kept").

`freed_memory_kept()` turns mappings and trimming off for its block, so what is freed stays
in the heap for the next allocation, then trims what is free when the block ends (its pages
go back to the system; the step's peak was the same, 1.74-1.76 GB against 1.74). The heap
keeps its size, so later steps of the process allocate there first, and what they free in
it is not returned until the next trim: the process holds at most that step's peak.
Elsewhere than glibc (musl, macOS) it does nothing; `FEEDBACK_KEEP_FREED_MEMORY=0` turns it off.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
#: After the block: what glibc's own sliding threshold settles at in a process that frees
#: large arrays (the largest it slides to, and twice that for trimming); the slide itself
#: stops once any parameter is set.
_AFTER = {_M_MMAP_MAX: 65536, _M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 64 << 20}
_DURING = {_M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: 2**31 - 1}

#: Set to 0 to leave glibc's allocation policy alone.
ENV = "FEEDBACK_KEEP_FREED_MEMORY"


def _glibc() -> ctypes.CDLL | None:
    if os.environ.get(ENV, "1").strip() == "0":
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version  # absent outside glibc: AttributeError
    except (OSError, AttributeError):
        return None
    return libc


def _set(libc: ctypes.CDLL, params: dict[int, int]) -> bool:
    return all(libc.mallopt(ctypes.c_int(k), ctypes.c_int(v)) == 1 for k, v in params.items())


@contextmanager
def freed_memory_kept() -> Iterator[None]:
    """Within the block freed memory is reused, not unmapped; at its end the free is trimmed."""
    libc = _glibc()
    if libc is None or not _set(libc, _DURING):
        yield
        return
    try:
        yield
    finally:
        _set(libc, _AFTER)
        libc.malloc_trim(ctypes.c_size_t(0))
