"""One thread that calls a callback when its deadline comes: the clock behind every exchange's `Guard`.

A `threading.Timer` per exchange meant a thread started and stopped for
every call to Studio: three per photo on the upload path, and on a loaded
two-core NAS starting a thread waits for the scheduler, which the profile
of a 200-photo ingest showed as a visible share of the upload workers'
time. Here one daemon thread sleeps until the earliest deadline; adding and
cancelling are a heap push and a flag under a lock.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable


COMPACT_AFTER = 256
"""Cancelled entries tolerated in the heap before it is compacted."""


def _nothing() -> None:
    """What a cancelled deadline runs, should it already have been taken off the heap."""


class Deadline:
    """A callback registered with the watcher, run at its time unless cancelled first."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback, self.cancelled = callback, False


class DeadlineWatcher:
    """Run each registered callback once its deadline has passed, on one thread started when first needed."""

    def __init__(self, name: str = "deadlines") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._cancelled = 0

    def add(self, when: float, callback: Callable[[], None]) -> Deadline:
        """Register `callback` to run at monotonic time `when`; return the handle that cancels it."""
        deadline = Deadline(callback)
        with self._wake:
            heapq.heappush(self._heap, (when, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()  # the new deadline comes first: sleep less
        return deadline

    def cancel(self, deadline: Deadline) -> None:
        """Make sure `deadline`'s callback does not run (if it has not already started).

        Cancelled entries stay in the heap until they reach its front, unless
        they come to outnumber the live ones: then the heap is rebuilt, so a
        long deadline cancelled early (most are) never piles up. Meanwhile a
        cancelled entry holds nothing: its callback (and whatever that keeps
        alive, a request's sockets) is let go at once.
        """
        with self._wake:
            if deadline.cancelled:
                return
            deadline.cancelled = True
            deadline.callback = _nothing
            self._cancelled += 1
            if self._cancelled > COMPACT_AFTER and self._cancelled * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def pending(self) -> int:
        """How many entries the heap holds (cancelled ones included until dropped): bounded, see `cancel`."""
        with self._wake:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            due = self._next_due()
            if not due.cancelled:
                try:
                    due.callback()
                except Exception:  # noqa: BLE001 - one failing callback must not stop every other deadline
                    pass

    def _next_due(self) -> Deadline:
        """Block until the earliest deadline has come; pop and return it."""
        with self._wake:
            while True:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)  # cancelled ones leave as soon as they reach the front
                    self._cancelled = max(0, self._cancelled - 1)
                if not self._heap:
                    self._wake.wait()
                    continue
                wait = self._heap[0][0] - time.monotonic()
                if wait <= 0:
                    return heapq.heappop(self._heap)[2]
                self._wake.wait(wait)


WATCHER = DeadlineWatcher("studio-deadlines")
"""The one watcher every Guard of this process uses."""
