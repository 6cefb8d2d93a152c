"""What the kiosk process does with memory it has freed: give it back to the system (glibc's allocator).

With 100,000 citizens the running kiosk must stay under 350 MB resident (issue 16); start-up parses and decrypts
far more than it keeps, and glibc would otherwise hold on to what was freed (``benchmarks/startup.py``).
"""
from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3             # glibc's mallopt parameter (malloc.h)
BIG_BLOCK = 16 * 1024 * 1024       # above a camera frame (9 MB at 2304x1296), below start-up's template pieces


def big_blocks_go_back_at_once() -> None:
    """Blocks of 16 MB and more are given back to the system as soon as they are freed (glibc: mmap'd).

    glibc would otherwise raise that limit to the largest block freed so far, so that start-up's pieces of the
    templates (17 MB each, kiosk.storage.TemplateFile.CHUNK, freed one by one while the face index takes them)
    stayed in the heap: the peak was the index and every piece together (420 MB instead of 260 at 100,000
    citizens, in-process). Frames and per-match arrays stay below it, in the heap, as glibc would keep them.
    """
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, BIG_BLOCK)
    except (OSError, AttributeError):           # not glibc: its own rules
        pass


def release_freed_memory() -> None:
    """Hand the heap pages start-up freed back to the system (glibc keeps them for reuse otherwise).

    Start-up parses 100,000 citizen records and decrypts 300,000 templates in batches: the pieces are freed,
    but scattered between objects that stay, so without this the running kiosk keeps tens of MB it never uses.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)        # the process's own symbols: glibc's when it is glibc
    except (OSError, AttributeError):           # not glibc (no malloc_trim): nothing to give back this way
        pass
