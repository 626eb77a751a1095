"""Decoding submitted photos within the process's memory budget.

Every photo is decoded once, strictly (``inspection.images.decode_photo``: a truncated
or lying file is refused by its decoder), at the size its slot's checks need, and only
once the process's decode budget (``inspection.budget.MemoryBudget``) has room for it:

- the budget is ``KIPIMO_DECODE_MEMORY_MB``, else a quarter of what the process may use
  (its cgroup's ``memory.max``, else physical memory);
- a decode reserves its peak before allocating and keeps ``_INSPECTION_HOLD`` x its
  output while the array lives (the inspection works on it, and copies it, later);
- one that cannot start within ``KIPIMO_DECODE_WAIT_S`` is answered 503 with
  ``Retry-After``; one larger than the whole budget, 413.

Freed photos leave glibc's per-thread heaps large: the number of heaps is capped
(``M_ARENA_MAX``, unless ``MALLOC_ARENA_MAX`` is set), and once the budget is idle again
after large photos a thread hands their free pages back (``malloc_trim``). Figures:
README, bench/decode_bombs.py.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from inspection.budget import MemoryBudget
from inspection.images import DecodedPhoto, ImageInfo, decode_photo, decode_reduction, probe_image
from service.settings import Settings

__all__ = ["decode_budget", "decode_budget_bytes", "decode_for_slot", "memory_limit_bytes"]

log = logging.getLogger(__name__)

_MB = 1024 * 1024
# What a photo holds of the budget while it is inspected, as a multiple of its decoded bytes: the array and
# the copies the card search, the quality gate and the overlay make of it (their peak on a 49 MP photo on
# a card slot: 2.7x). Held from the decode on, so that no photo waits for more memory half-way through.
_INSPECTION_HOLD = 3.0
_TRIM_AFTER_BYTES = 16 * _MB  # a freed photo at least this large asks for a trim, once the budget is idle
_ARENAS = 2  # glibc heaps for the whole process (default: 8 per core, each keeping its own peak)
_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


def memory_limit_bytes() -> int:
    """What this process may use: physical memory, or less where a cgroup (v2 or v1) limits it."""
    limit = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    candidates = [Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")]
    try:  # cgroup v2: this process's own group ("0::/path")
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                candidates.insert(0, Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "memory.max")
    except OSError:
        pass
    for path in candidates:
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max": no limit
            limit = min(limit, int(text))
    return limit


def decode_budget_bytes(settings: Settings) -> int:
    """KIPIMO_DECODE_MEMORY_MB, else a quarter of ``memory_limit_bytes``, and never less than one photo at
    the pixel limit holds while it is inspected (else such a photo could never be accepted)."""
    if settings.decode_memory_mb is not None:
        return settings.decode_memory_mb * _MB
    return max(memory_limit_bytes() // 4, int(_INSPECTION_HOLD * 3 * settings.max_pixels))


def decode_budget(settings: Settings) -> MemoryBudget:
    """The process's one budget for these settings' size and wait."""
    capacity = decode_budget_bytes(settings)
    with _BUDGETS_LOCK:  # two first requests at once must share one budget, not make two
        return _budget(capacity, settings.decode_wait_s)


_BUDGETS_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _budget(capacity: int, wait_s: float) -> MemoryBudget:
    _heap.start()
    log.info("decoding photos within %d MB (KIPIMO_DECODE_MEMORY_MB), waiting at most %g s", capacity // _MB, wait_s)
    return MemoryBudget(capacity, wait_s=wait_s, on_release=_heap)


class _Heap:
    """glibc's heap, kept from holding on to the peak of a burst of large photos.

    The decoders' and the inspection's intermediates land in per-thread malloc arenas, which keep
    their free pages (RSS "never came back"); ``malloc_trim(0)`` returns them. Only once no photo is
    held: trimming after every photo of a burst doubled its time (the next photo faults the pages
    in again). It runs on its own thread, as the last release fires while its array is being freed,
    before its memory is. Nothing happens where the C library is not glibc.
    """

    def __init__(self) -> None:
        self._due = threading.Event()
        self._large = False  # a large photo was freed since the last trim
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._libc: Any = None
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
            if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt"):
                libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
                libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
                self._libc = libc
        except OSError:
            pass

    def start(self) -> None:
        """Cap the arenas and start the trimming thread (once; never from a release, which may run
        inside a garbage collection)."""
        with self._lock:
            if self._libc is None or self._thread is not None:
                return
            if "MALLOC_ARENA_MAX" not in os.environ:  # the operator's choice wins
                self._libc.mallopt(_M_ARENA_MAX, _ARENAS)
            self._thread = threading.Thread(target=self._run, name="kipimo-heap-trim", daemon=True)
            self._thread.start()

    def __call__(self, released: int, held: int) -> None:  # unlocked: a lost race costs one trim more or less
        if released >= _TRIM_AFTER_BYTES:
            self._large = True
        if held == 0 and self._large:
            self._large = False
            self._due.set()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            self._libc.malloc_trim(0)


_heap = _Heap()


def decode_for_slot(data: bytes, slot: object | None, *, settings: Settings,
                    info: ImageInfo | None = None) -> DecodedPhoto:
    """Decode (and so verify) the whole photo at the size the slot's inspection needs.

    Full size on the card (measurement); reduced where only the quality gate and models look; 1/8 where
    nothing will look (vision off, or a slot the standard does not have): the decode still reads every byte,
    so a truncated or lying file is refused all the same, for a sixty-fourth of the memory.
    """
    info = info if info is not None else probe_image(data)
    if slot is None or not settings.vision:
        reduce, hold = 8, 1.0
    else:
        reduce = decode_reduction(info.width, info.height, card=bool(getattr(slot, "card", True)))
        hold = _INSPECTION_HOLD
    return decode_photo(data, max_pixels=settings.max_pixels, reduce=reduce, info=info,
                        budget=decode_budget(settings), hold=hold)
