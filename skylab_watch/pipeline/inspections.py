"""Checking settled files off the work loop: a bounded pool, a time bound, one check per file at a time.

A check reads and decodes a whole photo; a hostile or broken file (a
decompression bomb, a share that stalls mid-read) can make that slow. Done
on the reconciler thread, it would stall every other photo and starve the
systemd watchdog. So the loop only hands settled files over (`submit`) and,
each pass, records what finished (`step`); it never decodes a pixel and
never waits on a check. A check still running after `seconds` is given up:
the file is rejected with that reason and whatever the check says later is
ignored. Nothing is recorded before a check finishes, so checks dropped at
shutdown are simply redone at the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

from skylab_watch.config import WatchConfig
from skylab_watch.pipeline import intake
from skylab_watch.pipeline.context import Context
from skylab_watch.watch.scan import FileStat
from skylab_watch.workers import WorkerPool

log = logging.getLogger("skylab_watch")

INSPECT_SECONDS = 120.0
"""How long the check of one file may take before the file is rejected as too costly (a bomb, a stalled share).
Far above what a legitimate photo needs (a 200 MP decode takes about 2 s), far below systemd's patience."""

QUEUED_CHECKS = 64
"""Checks handed to the pool at once (running, queued or finished and not yet recorded). Far more than the
threads: a worker that finishes takes the next file itself, so intake never waits for the loop to come
round (a pass that talks to Studio takes a while); each entry is only a name and a stat."""

_Key = tuple[str, str]  # (watch, rel_path)


def pool_size() -> int:
    """Return how many checks run at once: one per core, at most 4 (decoding is CPU-bound)."""
    return max(1, min(4, os.cpu_count() or 1))


class Inspections:
    """The settled files of every watch waiting for, or under, a check; owned by the reconciler thread.

    `on_done` is called (from a worker) when a check finishes, to wake the loop.
    """

    def __init__(self, ctx: Context, seconds: float = INSPECT_SECONDS, size: int | None = None,
                 on_done: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.seconds = seconds
        self._on_done = on_done
        self._clock = clock
        self._pool: WorkerPool[_Key] = WorkerPool(size or pool_size(), "inspect", capacity=QUEUED_CHECKS)
        self._waiting: dict[_Key, tuple[WatchConfig, FileStat]] = {}
        self._running: dict[_Key, tuple[WatchConfig, FileStat]] = {}
        self._given_up: set[_Key] = set()
        self._started: dict[_Key, float] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, watch: WatchConfig, stat: FileStat) -> None:
        """Queue a settled file for a check; a newer look at a file already waiting replaces the older one."""
        if self._closed:
            return
        key = (watch.name, stat.rel_path)
        self._waiting.pop(key, None)
        self._waiting[key] = (watch, stat)

    def step(self) -> None:
        """Record finished checks, give up overdue ones, start waiting ones while the pool has room."""
        self._collect()
        self._give_up_overdue()
        self._start_waiting()

    def pending(self, watch: str | None = None) -> int:
        """Return how many files (of one watch, or all) wait for or are under a check."""
        keys = [*self._waiting, *(k for k in self._running if k not in self._given_up)]
        return sum(1 for name, _rel in keys if watch is None or name == watch)

    def busy(self) -> bool:
        """Return True while any file waits for or is under a check."""
        return self.pending() > 0

    def close(self) -> None:
        """Stop: drop waiting checks and abandon running ones (nothing was recorded; the next start redoes them)."""
        self._closed = True
        self._waiting.clear()
        self._pool.close()

    # ------------------------------------------------------------------ the loop's side

    def _start_waiting(self) -> None:
        for key in list(self._waiting):
            if not self._pool.has_room():
                return
            if self._pool.in_flight(key):
                continue  # one check per file at a time: the newer look waits for the older one
            watch, stat = self._waiting.pop(key)
            if not self.ctx.has_watch(watch.name) or not intake.needs_inspection(self.ctx, watch, stat):
                continue
            self._running[key] = (watch, stat)
            self._pool.submit(key, self._check, key, watch, stat)

    def _collect(self) -> None:
        """Record every check finished since the last pass, in one transaction: one commit (one fsync, one
        turn of the ledger lock the upload workers also wait on) rather than one per file."""
        finished = self._pool.reap()
        if not finished:
            return
        with self.ctx.ledger.transaction():
            self._record_all(finished)

    def _record_all(self, finished: list[tuple[_Key, Any]]) -> None:
        for key, outcome in finished:
            watch, _stat = self._running.pop(key)
            with self._lock:
                self._started.pop(key, None)
            if key in self._given_up:
                self._given_up.discard(key)
                log.info("%s: the check of %s ended after it was given up; its result is ignored", *key)
            elif isinstance(outcome, BaseException):  # a bug: nothing recorded, so the next rescan retries it
                log.error("%s: the check of %s crashed; it is tried again at the next rescan", *key,
                          exc_info=outcome)
            elif self.ctx.has_watch(watch.name):
                self._record(watch, key, outcome)

    def _record(self, watch: WatchConfig, key: _Key, checked: intake.Checked) -> None:
        """Record one finished check; a failure to record costs only this file (the next rescan finds it again)."""
        try:
            intake.record_checked(self.ctx, watch, checked)
        except Exception:  # noqa: BLE001 - the other finished checks must still be recorded
            log.exception("%s: could not record the check of %s; the next rescan looks at it again", *key)

    def _give_up_overdue(self) -> None:
        now = self._clock()
        with self._lock:
            overdue = [key for key, began in self._started.items() if now - began > self.seconds]
            for key in overdue:
                del self._started[key]
        for key in overdue:
            watch, stat = self._running[key]
            self._given_up.add(key)
            log.warning("%s: the check of %s has run for more than %g s; giving up on it", *key, self.seconds)
            if self.ctx.has_watch(watch.name):
                intake.record_too_slow(self.ctx, watch, stat, self.seconds)

    # ------------------------------------------------------------------ the workers' side

    def _check(self, key: _Key, watch: WatchConfig, stat: FileStat) -> intake.Checked:
        """Check one file on a worker thread; the clock of its time bound starts now, not when it was queued."""
        with self._lock:
            self._started[key] = self._clock()
        try:
            return intake.check_settled_file(watch, stat, self.ctx.staging_dir, self.seconds)
        finally:
            if self._on_done is not None:
                self._on_done()
