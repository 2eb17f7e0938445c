"""The figures of the live view: per watch, where this run's photos are; overall, how fast and how long.

`Figures.take` is called on the work loop's thread (the daemon's `on_loop`
hook), at most every `SNAPSHOT_SECONDS`: the counts of files settling are
the daemon's own, read where they are kept without locks, and the rest is one
small ledger query (`skylab_watch.ledger.progress`). The snapshot it makes is
immutable, so the display thread reads it without a lock.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable

from skylab_watch.ledger import Ledger, PhotoState
from skylab_watch.ledger.progress import ProgressCount, first_row_of_run, progress_counts

if TYPE_CHECKING:
    from skylab_watch.daemon import Daemon

log = logging.getLogger("skylab_watch")

SNAPSHOT_SECONDS = 0.5
"""How often the figures are read: twice a second, one ledger query each time."""
RATE_WINDOW_SECONDS = 60.0
"""Throughput is measured over the last minute, so that it follows a night whose pace changes."""
SHORTEST_RATE_SPAN = 2.0
"""Below this many seconds of samples a rate is noise: none is shown."""

# Where each state of work in progress is shown; the finished states have their own column.
_COLUMN_OF = {PhotoState.READY: "waiting", PhotoState.BATCHED: "waiting", PhotoState.UPLOADING: "uploading",
              PhotoState.UPLOADED: "uploading", PhotoState.QUEUED: "at_studio", PhotoState.DELIVERING: "at_studio",
              PhotoState.DELIVERED: "delivered", PhotoState.DONE: "delivered", PhotoState.REJECTED: "rejected",
              PhotoState.DUPLICATE: "duplicate", PhotoState.FAILED: "failed"}


@dataclass(frozen=True)
class WatchFigures:
    """Where one watch's photos are now; delivered, rejected and failed count this run only."""

    name: str
    settling: int = 0
    waiting: int = 0
    uploading: int = 0
    at_studio: int = 0
    jobs_in_front: int | None = None
    delivered: int = 0
    rejected: int = 0
    duplicate: int = 0
    failed: int = 0
    paused: str | None = None

    @property
    def left(self) -> int:
        """Return how many files are still on their way (settling, waiting, uploading or at Studio)."""
        return self.settling + self.waiting + self.uploading + self.at_studio


@dataclass(frozen=True)
class Snapshot:
    """The whole view at one moment: every watch, the pace, and the time left (None: not known yet)."""

    watches: tuple[WatchFigures, ...] = ()
    per_minute: float | None = None
    seconds_left: float | None = None
    started: bool = False

    def total(self, column: str) -> int:
        """Return the sum of one column over every watch."""
        return sum(getattr(w, column) for w in self.watches)

    @property
    def left(self) -> int:
        return sum(w.left for w in self.watches)


def watch_figures(name: str, counts: Iterable[ProgressCount], settling: int, paused: str | None) -> WatchFigures:
    """Given one watch's ledger counts, its files settling and why it is paused, return its row."""
    totals = dict.fromkeys(("waiting", "uploading", "at_studio", "delivered", "rejected", "duplicate", "failed"), 0)
    in_front: list[int] = []
    for count in counts:
        column = _COLUMN_OF.get(PhotoState(count.state))
        if column is not None:
            totals[column] += count.count
        if count.state == PhotoState.QUEUED and count.studio_status != "processing" \
                and count.jobs_in_front is not None:
            in_front.append(count.jobs_in_front)
    return WatchFigures(name=name, settling=settling, jobs_in_front=min(in_front, default=None), paused=paused,
                        **totals)


@dataclass
class Pace:
    """Delivered counts over time, giving photos a minute and, with the work left, the time left."""

    window: float = RATE_WINDOW_SECONDS
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, now: float, delivered: int) -> None:
        """Record the run's delivered total at `now` (monotonic seconds); forget samples out of the window."""
        self.samples.append((now, delivered))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    def per_minute(self) -> float | None:
        """Return photos delivered a minute over the window; None until SHORTEST_RATE_SPAN of samples."""
        if len(self.samples) < 2:
            return None
        (first_at, first), (last_at, last) = self.samples[0], self.samples[-1]
        span = last_at - first_at
        if span < SHORTEST_RATE_SPAN:
            return None
        return max(0, last - first) * 60.0 / span

    def seconds_left(self, left: int) -> float | None:
        """Return the seconds `left` photos take at the current pace; 0 when nothing is left, None if unknown."""
        if left == 0:
            return 0.0
        rate = self.per_minute()
        return left * 60.0 / rate if rate else None


class Figures:
    """Keeps the latest snapshot of a running daemon for the view to draw."""

    def __init__(self, ledger: Ledger, since: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.since = since
        self.clock = clock
        self.from_id = first_row_of_run(ledger)  # before the start-up scan records anything
        self.pace = Pace()
        self.snapshot = Snapshot()
        self._last = float("-inf")
        self._failing = False

    def on_loop(self, daemon: Daemon) -> None:
        """The daemon's `on_loop` hook: take a snapshot if the last one is SNAPSHOT_SECONDS old."""
        now = self.clock()
        if now - self._last >= SNAPSHOT_SECONDS:
            self._last = now
            self.take(daemon)

    def take(self, daemon: Daemon) -> Snapshot:
        """Read the figures now and make them the current snapshot; return it.

        A ledger that cannot be read keeps the last snapshot on screen and says
        so once in the log: the view is a window on the work, and a failure
        to draw it is no failure of a photo or a job (the work loop meets
        the same ledger and reports its trouble through the outcome table).
        """
        try:
            counts = progress_counts(self.ledger, self.since, self.from_id)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            if not self._failing:
                log.warning("the live view cannot read the ledger (%s); it shows the last figures it read", exc)
            self._failing = True
            return self.snapshot
        self._failing = False
        self.from_id = min([self.from_id, *(c.lowest_id for c in counts)])  # a photo sent again by `retry`
        self.snapshot = self._snapshot(daemon, counts)
        return self.snapshot

    def _snapshot(self, daemon: Daemon, counts: list[ProgressCount]) -> Snapshot:
        rows = []
        held = daemon.ctx.held_watches
        for name, disc in list(daemon.discoveries.items()):
            settling = disc.pending() + daemon.inspections.pending(name)
            paused = "paused by hand (skylab-watch resume)" if name in held else \
                (f"input folder unreadable: {disc.paused_reason}" if disc.paused_reason else None)
            rows.append(watch_figures(name, [c for c in counts if c.watch == name], settling, paused))
        snapshot = Snapshot(watches=tuple(rows), started=True)
        self.pace.add(self.clock(), snapshot.total("delivered"))
        return replace(snapshot, per_minute=self.pace.per_minute(), seconds_left=self.pace.seconds_left(snapshot.left))
