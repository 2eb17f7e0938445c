"""A small pool of worker threads, kept apart from the domain (it knows nothing of photos or jobs).

The reconciler loop submits one piece of work per key (a photo's row id, say),
never two for the same key at once, and later collects the outcomes with
`reap()` on its own thread, where every decision about a result is made.
Workers only run the function and hand back what it returned or raised.

Why not `concurrent.futures.ThreadPoolExecutor`: its threads are joined when
the interpreter exits, so a stop cannot leave a 45-second upload behind and
exit. Here the threads are daemon threads: `shutdown(grace)` waits up to
the grace for running work, then abandons what is left, and the process can
exit at once. Abandoning is safe only because every step records its intent
before it starts (the next start redoes it); that is the caller's promise.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Generic, Hashable, TypeVar

log = logging.getLogger(__name__)

__all__ = ["WorkerPool", "PoolClosed", "KeyInFlight"]

K = TypeVar("K", bound=Hashable)


class PoolClosed(RuntimeError):
    """Work was submitted after `shutdown()` began; it is never run."""


class KeyInFlight(ValueError):
    """Work was submitted for a key whose earlier work has not been reaped yet."""


class WorkerPool(Generic[K]):
    """Run `fn(*args)` per key on at most `size` daemon threads; hand outcomes back through `reap()`.

    size: how many pieces of work run at once.
    capacity: how many may be submitted and not yet reaped (running, waiting
    or finished); `has_room()` says whether one more fits. Defaults to twice
    `size`, so a worker that finishes finds the next piece waiting.
    Work submitted as `background` runs only when no other work waits: it
    uses time the pool would otherwise spend idle.
    """

    def __init__(self, size: int, name: str, capacity: int | None = None) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self.size = size
        self.name = name
        self.capacity = capacity or 2 * size
        self._cond = threading.Condition()
        self._waiting: deque[tuple[K, Callable[..., Any], tuple[Any, ...]]] = deque()
        self._background: deque[tuple[K, Callable[..., Any], tuple[Any, ...]]] = deque()
        self._queued: set[K] = set()  # the keys in either deque: `in_flight` is one look-up, its size what waits
        self._running: set[K] = set()
        self._finished: dict[K, Any] = {}
        self._threads: list[threading.Thread] = []
        self._closed = False

    # ------------------------------------------------------------------ the loop's side

    def submit(self, key: K, fn: Callable[..., Any], *args: Any, background: bool = False) -> None:
        """Queue `fn(*args)` under `key` (behind all other waiting work if `background`).

        Raise KeyInFlight if work for `key` is waiting, running or not yet
        reaped (one step per item at a time), PoolClosed after shutdown.
        """
        with self._cond:
            if self._closed:
                raise PoolClosed(f"the {self.name} pool is shut down")
            if self._known(key):
                raise KeyInFlight(f"{self.name}: work for {key!r} is already in flight")
            (self._background if background else self._waiting).append((key, fn, args))
            self._queued.add(key)
            self._start_thread_if_needed()
            self._cond.notify()

    def in_flight(self, key: K) -> bool:
        """Return True while work for `key` is waiting, running, or finished but not reaped."""
        with self._cond:
            return self._known(key)

    def busy(self) -> bool:
        """Return True while any work is waiting, running, or finished but not reaped."""
        with self._cond:
            return bool(self._queued or self._running or self._finished)

    def __len__(self) -> int:
        """How many pieces of work are submitted and not yet reaped."""
        with self._cond:
            return len(self._queued) + len(self._running) + len(self._finished)

    def queued(self) -> int:
        """How many pieces of work wait for a thread (submitted, not started)."""
        with self._cond:
            return len(self._queued)

    def has_room(self) -> bool:
        """Return True if one more submission stays within the capacity."""
        return len(self) < self.capacity

    def reap(self) -> list[tuple[K, Any]]:
        """Return (key, outcome) for every finished piece of work and forget those keys.

        The outcome is what the function returned, or the exception it
        raised (an instance of BaseException): the caller decides what it
        means, on its own thread.
        """
        with self._cond:
            done, self._finished = list(self._finished.items()), {}
        return done

    def close(self) -> list[K]:
        """Stop taking work and drop what has not started; return the keys dropped. Safe to call twice."""
        with self._cond:
            self._closed = True
            dropped = [key for key, _fn, _args in (*self._waiting, *self._background)]
            self._waiting.clear()
            self._background.clear()
            self._queued.clear()
            self._cond.notify_all()
            return dropped

    def shutdown(self, grace_seconds: float) -> list[K]:
        """Close the pool, then wait up to the grace for the work that is running.

        Return the keys abandoned: work dropped before it started and work
        still running when the grace ran out. Running work is not
        interrupted (a thread cannot be), but its threads are daemon threads,
        so it never holds up the exit of the process. Finished outcomes stay
        available to `reap()`.
        """
        deadline = time.monotonic() + max(0.0, grace_seconds)
        dropped = self.close()
        with self._cond:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return dropped + sorted(self._running, key=repr)

    # ------------------------------------------------------------------ the workers' side

    def _known(self, key: K) -> bool:
        return key in self._queued or key in self._running or key in self._finished

    def _start_thread_if_needed(self) -> None:
        """Start one more thread while there is waiting work and fewer threads than `size` (lock held)."""
        idle = sum(t.is_alive() for t in self._threads) - len(self._running)
        if idle >= len(self._queued) or len(self._threads) >= self.size:
            return
        thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads) + 1}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        """Take work until the pool is shut down; record every outcome, whatever it is."""
        while True:
            with self._cond:
                while not self._queued and not self._closed:
                    self._cond.wait()
                if not self._queued:
                    return
                key, fn, args = (self._waiting or self._background).popleft()
                self._queued.discard(key)
                self._running.add(key)
            outcome: Any
            try:
                outcome = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which decides
                outcome = exc
            with self._cond:
                self._running.discard(key)
                self._finished[key] = outcome
                self._cond.notify_all()
