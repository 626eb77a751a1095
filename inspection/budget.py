"""A memory budget for decoded photos: a weighted semaphore counted in bytes.

A photo's file says little about what it costs once decoded: a 47 kB PNG of zeros
declares 49 MP, 147 MB of BGR pixels. The pixel limit bounds one photo; this bounds
all of them together. Each decode reserves its peak (output and intermediates)
before it allocates, gives back the intermediates when it is done, and keeps the
output's share for as long as the decoded array lives (``Lease.bind``: released
when the array is freed), because the inspection works on that array long after
the decoder returned.

Waiters are served in arrival order (a large photo is not starved by a stream of
small ones). A reservation that cannot start within ``wait_s`` is refused with
``qc.errors.ServerBusy`` (503, retry later); one larger than the whole budget can
never fit and is refused at once with ``ImageTooLarge``.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable

from qc.errors import ImageTooLarge, ServerBusy

__all__ = ["Lease", "MemoryBudget"]

_MB = 1024 * 1024


class MemoryBudget:
    """``capacity`` bytes shared by every decode of the process.

    ``wait_s``: how long a reservation may wait for others to finish (None: as long as it takes).
    ``on_wait``: called (with the bytes asked for) when a reservation starts waiting; for tests.
    ``on_release``: called after each give-back, outside the lock, with the bytes given back and those
    still held; the service returns freed heap to the system there once nothing is held.
    """

    def __init__(self, capacity: int, *, wait_s: float | None = 30.0,
                 on_wait: Callable[[int], None] | None = None,
                 on_release: Callable[[int, int], None] | None = None) -> None:
        if capacity <= 0:
            raise ValueError(f"a memory budget needs a positive capacity, got {capacity}")
        self.capacity = int(capacity)
        self.wait_s = wait_s
        self._on_wait = on_wait
        self._on_release = on_release
        self._in_use = 0
        self._queue: deque[object] = deque()
        self._cond = threading.Condition()

    @property
    def in_use(self) -> int:
        with self._cond:
            return self._in_use

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._queue)

    def reserve(self, nbytes: int, *, what: str = "this photo") -> Lease:
        """Block until ``nbytes`` fit (first come, first served), then hold them."""
        nbytes = max(0, int(nbytes))
        if nbytes > self.capacity:
            raise ImageTooLarge(
                f"decoding {what} needs {math.ceil(nbytes / _MB)} MB, more than this server's decode "
                f"budget of {self.capacity // _MB} MB (KIPIMO_DECODE_MEMORY_MB); send a smaller photo "
                "(e.g. 3000 px long side)"
            )
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            deadline = None if self.wait_s is None else time.monotonic() + self.wait_s
            told = False
            try:
                while self._queue[0] is not ticket or self._in_use + nbytes > self.capacity:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise ServerBusy(
                            f"the server is decoding other photos ({self._in_use // _MB} of "
                            f"{self.capacity // _MB} MB in use); send {what} again in a few seconds",
                            retry_after_s=max(1, math.ceil(self.wait_s or 1)),
                        )
                    if not told and self._on_wait is not None:
                        told = True
                        self._on_wait(nbytes)
                    self._cond.wait(remaining)
                self._in_use += nbytes
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()  # the next in line may fit now (or, on refusal, move up)
        return Lease(self, nbytes)

    def _give_back(self, nbytes: int) -> None:
        with self._cond:
            self._in_use -= nbytes
            held = self._in_use
            self._cond.notify_all()
        if self._on_release is not None:
            self._on_release(nbytes, held)


class Lease:
    """Bytes held in a ``MemoryBudget``; give them back with ``shrink``/``release`` (both idempotent)."""

    def __init__(self, budget: MemoryBudget, nbytes: int) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self.nbytes = nbytes

    def shrink(self, nbytes: int) -> None:
        """Keep only ``nbytes`` (the intermediates are freed, the output stays)."""
        with self._lock:
            back = self.nbytes - max(0, int(nbytes))
            if back <= 0:
                return
            self.nbytes -= back
        self._budget._give_back(back)

    def release(self) -> None:
        self.shrink(0)

    def bind(self, obj: object) -> None:
        """Release when ``obj`` (the decoded array) is garbage: its memory is in use until then."""
        finalizer = weakref.finalize(obj, self.release)
        finalizer.atexit = False

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
