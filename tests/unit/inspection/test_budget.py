"""The decode memory budget: a weighted semaphore in bytes, first come first served.

Concurrency is made deterministic with events: a reservation tells (``on_wait``) when it
starts waiting, so a test knows it is blocked without sleeping or timing anything.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from inspection.budget import Lease, MemoryBudget
from qc.errors import ImageTooLarge, ServerBusy

_SAFETY_S = 30  # only bounds a hang if the code under test is broken; no assertion depends on it


class _Waits:
    """``on_wait`` for a budget: one event per reservation that started waiting, in order."""

    def __init__(self) -> None:
        self.events = [threading.Event() for _ in range(8)]
        self.count = 0

    def __call__(self, _nbytes: int) -> None:
        self.events[self.count].set()
        self.count += 1


def _reserve_in_thread(budget: MemoryBudget, nbytes: int, got: list[tuple[int, Lease]]) -> threading.Thread:
    def run() -> None:
        got.append((nbytes, budget.reserve(nbytes)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_reservation_waits_until_enough_is_given_back() -> None:
    waits = _Waits()
    budget = MemoryBudget(100, wait_s=None, on_wait=waits)
    first = budget.reserve(70)
    got: list[tuple[int, Lease]] = []
    thread = _reserve_in_thread(budget, 50, got)
    assert waits.events[0].wait(_SAFETY_S)  # 70 + 50 > 100: it waits
    assert got == [] and budget.in_use == 70 and budget.waiting == 1
    first.release()
    thread.join(_SAFETY_S)
    assert [n for n, _ in got] == [50]
    assert budget.in_use == 50 and budget.waiting == 0


def test_waiters_are_served_in_arrival_order_so_a_large_photo_is_not_starved() -> None:
    waits = _Waits()
    budget = MemoryBudget(100, wait_s=None, on_wait=waits)
    held = budget.reserve(90)
    got: list[tuple[int, Lease]] = []
    large = _reserve_in_thread(budget, 80, got)
    assert waits.events[0].wait(_SAFETY_S)
    small = _reserve_in_thread(budget, 10, got)  # would fit now (90 + 10), but the large one came first
    assert waits.events[1].wait(_SAFETY_S)
    assert got == [] and budget.waiting == 2
    held.release()
    large.join(_SAFETY_S)
    small.join(_SAFETY_S)
    assert [n for n, _ in got] == [80, 10]
    assert budget.in_use == 90


def test_a_reservation_that_cannot_start_in_time_is_refused_as_busy() -> None:
    budget = MemoryBudget(100, wait_s=0)
    held = budget.reserve(60)
    with pytest.raises(ServerBusy, match="decoding other photos") as err:
        budget.reserve(50)
    assert err.value.status_code == 503 and err.value.retry_after_s >= 1
    assert budget.waiting == 0 and budget.in_use == 60  # the refused one left nothing behind
    held.release()
    assert budget.reserve(50).nbytes == 50


def test_a_reservation_larger_than_the_whole_budget_is_refused_at_once() -> None:
    budget = MemoryBudget(64 * 1024 * 1024, wait_s=None)
    with pytest.raises(ImageTooLarge, match="needs 100 MB, more than this server's decode budget of 64 MB"):
        budget.reserve(100 * 1024 * 1024)
    assert budget.in_use == 0


def test_shrink_gives_back_the_difference_and_release_the_rest_once() -> None:
    released: list[tuple[int, int]] = []
    budget = MemoryBudget(100, on_release=lambda back, held: released.append((back, held)))
    lease = budget.reserve(80)
    lease.shrink(30)
    assert budget.in_use == 30 and lease.nbytes == 30
    lease.shrink(50)  # growing is not shrinking: nothing changes
    assert budget.in_use == 30
    lease.release()
    lease.release()
    assert budget.in_use == 0 and released == [(50, 30), (30, 0)]


def test_a_bound_lease_is_released_when_its_array_is_freed() -> None:
    budget = MemoryBudget(1000)
    array = np.zeros(100, np.uint8)
    budget.reserve(100).bind(array)
    assert budget.in_use == 100
    view = array[10:]  # a view keeps the pixels alive
    del array
    gc.collect()
    assert budget.in_use == 100
    del view
    gc.collect()
    assert budget.in_use == 0


def test_a_lease_as_context_manager_releases_on_error() -> None:
    budget = MemoryBudget(100)
    with pytest.raises(RuntimeError), budget.reserve(40):
        assert budget.in_use == 40
        raise RuntimeError("decoder failed")
    assert budget.in_use == 0


def test_a_budget_needs_a_positive_capacity() -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryBudget(0)
