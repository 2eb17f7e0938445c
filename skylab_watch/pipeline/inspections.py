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

Checks also run *ahead*, while files still settle (`look_ahead`), on time
the pool would otherwise spend idle: photos copied in before a start, or a
card dumped at once, are mostly checked by the time they settle. Such a
result is only kept in memory and counts only if it passed and the file then
settles exactly as it was checked (same size and mtime); anything else is
checked again once settled, as if nothing had run ahead. A refusal found
ahead is never used: the copy may simply not have finished.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Container, NamedTuple

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

AHEAD_CHECKS = 32
"""Checks run ahead of settling that may be submitted and not yet reaped at once. They queue behind every
settled file's check (the pool's background work), so they never delay one; the cap only bounds memory."""


class _Key(NamedTuple):
    """One check's key in the pool: a file of a watch, checked once settled or ahead of it."""

    watch: str
    rel_path: str
    ahead: bool = False


def _vouches(checked: intake.Checked | None, stat: FileStat) -> bool:
    """True if a check run ahead (None while it runs) passed and read the file as it has now settled, so it
    need not run again."""
    if checked is None or checked.upload_path is not None:
        return False
    found = checked.inspection
    return found.ok and (found.size, found.mtime_ns) == (stat.size, stat.mtime_ns)


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
        self._pool: WorkerPool[_Key] = WorkerPool(size or pool_size(), "inspect",
                                                 capacity=QUEUED_CHECKS + AHEAD_CHECKS)
        self._waiting: dict[_Key, tuple[WatchConfig, FileStat]] = {}
        self._running: dict[_Key, tuple[WatchConfig, FileStat]] = {}
        self._ahead: dict[_Key, intake.Checked | None] = {}  # by the file's settled key; None while it runs
        self._ahead_in_pool = 0  # submitted and not yet reaped (the loop's count)
        self._ahead_unfinished = 0  # submitted and not yet finished (under _lock: workers count it down)
        self._given_up: set[_Key] = set()
        self._started: dict[_Key, float] = {}
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, watch: WatchConfig, stat: FileStat) -> None:
        """Queue a settled file for a check; a newer look at a file already waiting replaces the older one."""
        if self._closed:
            return
        key = _Key(watch.name, stat.rel_path)
        self._waiting.pop(key, None)
        self._waiting[key] = (watch, stat)

    def look_ahead(self, watch: WatchConfig, steady: list[FileStat], settling: Container[str]) -> None:
        """Check `steady` files of `watch` (still settling, but looking finished) while the pool has time.

        One check ahead per file while it settles; what is known of files no
        longer `settling` (settled, vanished) and not waiting is forgotten.
        """
        for key in list(self._ahead):
            if key in self._waiting:
                continue
            if (key.watch == watch.name and key.rel_path not in settling) or not self.ctx.has_watch(key.watch):
                del self._ahead[key]  # settled and recorded, vanished, or its watch removed by a reload
        for stat in steady:
            if self._closed or self._ahead_in_pool >= AHEAD_CHECKS:
                return
            key = _Key(watch.name, stat.rel_path)
            ahead_key = key._replace(ahead=True)
            if key in self._ahead or key in self._waiting or self._pool.in_flight(key) \
                    or self._pool.in_flight(ahead_key):
                continue
            self._ahead[key] = None
            self._ahead_in_pool += 1
            with self._lock:
                self._ahead_unfinished += 1
            self._pool.submit(ahead_key, self._check_ahead, ahead_key, watch, stat, background=True)

    def proven(self, watch: str, stat: FileStat) -> bool:
        """Return True if a check run ahead passed on this file exactly as `stat` shows it now."""
        return _vouches(self._ahead.get(_Key(watch, stat.rel_path)), stat)

    def step(self) -> None:
        """Record finished checks, give up overdue ones, start waiting ones while the pool has room."""
        self._collect()
        self._give_up_overdue()
        self._start_waiting()

    def pending(self, watch: str | None = None) -> int:
        """Return how many settled files (of one watch, or all) wait for or are under a check."""
        keys = [*self._waiting, *(k for k in self._running if k not in self._given_up)]
        return sum(1 for key in keys if watch is None or key.watch == watch)

    def checking_ahead(self) -> int:
        """Return how many checks run ahead of settling are submitted and not yet reaped."""
        return self._ahead_in_pool

    def busy(self) -> bool:
        """Return True while any settled file waits for or is under a check."""
        return self.pending() > 0

    def close(self) -> None:
        """Stop: drop waiting checks and abandon running ones (nothing was recorded; the next start redoes them)."""
        self._closed = True
        self._waiting.clear()
        self._ahead.clear()
        self._pool.close()

    # ------------------------------------------------------------------ the loop's side

    def _start_waiting(self) -> None:
        """Record the waiting files a check run ahead vouches for; start checks of the others while there is
        room (one check per file at a time: a newer look waits for the older one, or for its check ahead)."""
        vouched: list[tuple[WatchConfig, intake.Checked]] = []
        for key in list(self._waiting):
            watch, stat = self._waiting[key]
            ahead = self._ahead.get(key)
            if ahead is not None and _vouches(ahead, stat):
                del self._waiting[key], self._ahead[key]
                if self.ctx.has_watch(watch.name) and intake.needs_inspection(self.ctx, watch, stat):
                    vouched.append((watch, ahead))
                continue
            if len(self._running) >= QUEUED_CHECKS:
                if not self._ahead:
                    break
                continue
            ahead_key = key._replace(ahead=True)
            if self._pool.in_flight(key) or (self._pool.in_flight(ahead_key) and ahead_key not in self._given_up):
                continue
            del self._waiting[key]
            self._ahead.pop(key, None)
            if not self.ctx.has_watch(watch.name) or not intake.needs_inspection(self.ctx, watch, stat):
                continue
            self._running[key] = (watch, stat)
            self._pool.submit(key, self._check, key, watch, stat)
        if vouched:
            with self.ctx.ledger.transaction():
                for watch, checked in vouched:
                    self._record(watch, _Key(watch.name, checked.stat.rel_path), checked)

    def _collect(self) -> None:
        """Record every check finished since the last pass, in one transaction: one commit (one fsync, one
        turn of the ledger lock the upload workers also wait on) rather than one per file."""
        finished = self._pool.reap()
        settled = [(key, outcome) for key, outcome in finished if not key.ahead]
        for key, outcome in finished:
            if key.ahead:
                self._keep_ahead(key, outcome)
        if settled:
            with self.ctx.ledger.transaction():
                self._record_all(settled)

    def _keep_ahead(self, key: _Key, outcome: Any) -> None:
        """Keep what a check run ahead found, for when its file settles; a failed check is simply not kept."""
        self._ahead_in_pool -= 1
        with self._lock:
            self._started.pop(key, None)
        self._given_up.discard(key)
        settled_key = key._replace(ahead=False)
        if settled_key not in self._ahead:
            return  # forgotten meanwhile (settled and checked, vanished, or given up on)
        if isinstance(outcome, BaseException):
            log.debug("%s: the check ahead of %s crashed; it is checked once settled", key.watch, key.rel_path,
                      exc_info=outcome)
            del self._ahead[settled_key]
        else:
            self._ahead[settled_key] = outcome

    def _record_all(self, finished: list[tuple[_Key, Any]]) -> None:
        for key, outcome in finished:
            watch, _stat = self._running.pop(key)
            with self._lock:
                self._started.pop(key, None)
            if key in self._given_up:
                self._given_up.discard(key)
                log.info("%s: the check of %s ended after it was given up; its result is ignored",
                         key.watch, key.rel_path)
            elif isinstance(outcome, BaseException):  # a bug: nothing recorded, so the next rescan retries it
                log.error("%s: the check of %s crashed; it is tried again at the next rescan", key.watch,
                          key.rel_path, exc_info=outcome)
            elif self.ctx.has_watch(watch.name):
                self._record(watch, key, outcome)

    def _record(self, watch: WatchConfig, key: _Key, checked: intake.Checked) -> None:
        """Record one finished check; a failure to record costs only this file (the next rescan finds it again)."""
        try:
            intake.record_checked(self.ctx, watch, checked)
        except Exception:  # noqa: BLE001 - the other finished checks must still be recorded
            log.exception("%s: could not record the check of %s; the next rescan looks at it again",
                          key.watch, key.rel_path)

    def _give_up_overdue(self) -> None:
        now = self._clock()
        with self._lock:
            overdue = [key for key, began in self._started.items() if now - began > self.seconds]
            for key in overdue:
                del self._started[key]
        for key in overdue:
            self._given_up.add(key)
            if key.ahead:  # nothing to record: the file is checked (and if need be given up on) once settled
                self._ahead.pop(key._replace(ahead=False), None)
                log.debug("%s: the check ahead of %s has run for more than %g s; not waiting for it",
                          key.watch, key.rel_path, self.seconds)
                continue
            watch, stat = self._running[key]
            log.warning("%s: the check of %s has run for more than %g s; giving up on it", key.watch,
                        key.rel_path, self.seconds)
            if self.ctx.has_watch(watch.name):
                intake.record_too_slow(self.ctx, watch, stat, self.seconds)

    # ------------------------------------------------------------------ the workers' side

    def _check(self, key: _Key, watch: WatchConfig, stat: FileStat) -> intake.Checked:
        """Check one settled file on a worker thread; the clock of its time bound starts now, not when it was
        queued."""
        with self._lock:
            self._started[key] = self._clock()
        try:
            return intake.check_settled_file(watch, stat, self.ctx.staging_dir, self.seconds)
        finally:
            if self._on_done is not None:
                self._on_done()

    def _check_ahead(self, key: _Key, watch: WatchConfig, stat: FileStat) -> intake.Checked:
        """Check a file that has not settled yet (never resizing: nothing is written for a result that may
        not count). The loop is woken only if the file has settled meanwhile and waits for this result, or
        to hand over more files once half the checks ahead are done."""
        with self._lock:
            self._started[key] = self._clock()
        try:
            return intake.check_ahead(watch, stat, self.seconds)
        finally:
            with self._lock:
                self._ahead_unfinished -= 1
                running_low = self._ahead_unfinished == AHEAD_CHECKS // 2
            if self._on_done is not None and (running_low or key._replace(ahead=False) in self._waiting):
                self._on_done()
