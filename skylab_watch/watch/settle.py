"""Settling: wait until a file has stopped being written before touching it.

Studios drop photos over SMB shares, sync clients and camera tethering, and
none of them tell us when a copy is finished. A file is *settled* when

1. its size and mtime have not changed for `settle_seconds`, and
2. libvips can read its image header (`validate.header_readable`).

The second test catches copies that pause (a stalled network share) with
only part of the file written. A file that stays stable but unreadable for
`max(settle_seconds * 10, 60)` seconds is released anyway, so validation
rejects it with a reason instead of it waiting forever. Files whose type
Studio refuses skip the header test: validation will reject them at once.

While a file settles it may already be checked (`steady()` lists the files
worth it): a check that passes, on a file that then settles unchanged, has
proved its header readable, so `poll()` skips the header test for it.

The tracker is plain in-memory state owned by one thread (the reconciler);
observer threads never call it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from skylab_watch.watch.scan import FileStat, stat_candidate
from skylab_watch.watch.validate import EXTENSIONS, header_readable

log = logging.getLogger(__name__)

MIN_UNREADABLE_GRACE = 60.0
"""Seconds a stable file may stay unreadable before it is released for rejection."""

STEADY_FRACTION = 0.25
"""A file unchanged for this share of `settle_seconds` is worth checking before it settles (`steady()`):
a copy still running changes at nearly every look, so it is rarely checked in vain."""


@dataclass
class _Seen:
    """The last look at a tracked file and since when it has looked the same."""

    stat: FileStat
    stable_since: float


class SettleTracker:
    """Track files being written and tell which ones have settled.

    `note()` records a look at a file; a change in size or mtime restarts
    its clock. `due()` lists files unchanged for `settle_seconds`. `poll()`
    is the daemon's entry point: it re-stats, checks headers, and hands over
    (and stops tracking) the files that have settled. `name` (the watch's
    name) starts its log lines; `header_check` is replaceable for tests.
    """

    def __init__(
        self,
        settle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        header_check: Callable[[Path], bool] = header_readable,
        name: str = "settle",
        unreadable_grace: float | None = None,
        wall_clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.name = name
        self.settle_seconds = settle_seconds
        self.unreadable_grace = (max(settle_seconds * 10, MIN_UNREADABLE_GRACE)
                                 if unreadable_grace is None else unreadable_grace)
        self._clock = clock
        self._wall_clock_ns = wall_clock_ns
        self._header_check = header_check
        self._seen: dict[str, _Seen] = {}
        self._polled_at = float("-inf")  # when poll() last released the files then due

    def note(self, stat: FileStat) -> None:
        """Record a look at a file; its settle clock restarts if size or mtime changed."""
        self._note(stat, self._clock())

    def _note(self, stat: FileStat, now: float) -> None:
        seen = self._seen.get(stat.rel_path)
        if seen is None or (seen.stat.size, seen.stat.mtime_ns) != (stat.size, stat.mtime_ns):
            self._seen[stat.rel_path] = _Seen(stat, now)

    def due(self, now: float | None = None) -> list[FileStat]:
        """Return the tracked files unchanged for `settle_seconds`, as last noted.

        Only as fresh as the last `note()`; `poll()` re-stats first.
        """
        now = self._clock() if now is None else now
        return [seen.stat for seen in self._seen.values() if now - seen.stable_since >= self.settle_seconds]

    def steady(self, now: float | None = None) -> list[FileStat]:
        """Return the tracked files not yet due that look finished: unchanged for STEADY_FRACTION of
        `settle_seconds`, or last modified (by their own mtime) longer than `settle_seconds` ago, as
        photos copied in before a start are.

        Checking them now, while they settle, takes the check off the path
        from "settled" to "sent"; the settle rule itself is unchanged (a
        check counts only for a file that then settles as it was checked).
        """
        now = self._clock() if now is None else now
        old_enough = self._wall_clock_ns() - int(self.settle_seconds * 1e9)
        early = self.settle_seconds * STEADY_FRACTION
        return [seen.stat for seen in self._seen.values()
                if now - seen.stable_since < self.settle_seconds
                and (now - seen.stable_since >= early or seen.stat.mtime_ns <= old_enough)]

    def seconds_to_next_due(self, now: float | None = None) -> float | None:
        """Return how long until the next tracked file will have been unchanged for `settle_seconds`, or None
        if none is still to come due: the loop sleeps no longer than that. A file that came due since the last
        `poll()` gives 0 (look now, not a tick later); one already due then but held back (its header not
        readable yet) does not count, or the loop would spin on it."""
        now = self._clock() if now is None else now
        dues = [seen.stable_since + self.settle_seconds for seen in self._seen.values()]
        return min((max(due - now, 0.0) for due in dues if due > self._polled_at), default=None)

    def forget(self, rel_path: str) -> None:
        """Stop tracking a file (deleted, or handled elsewhere); unknown paths are fine."""
        self._seen.pop(rel_path, None)

    def pending(self) -> int:
        """Return how many files are still settling."""
        return len(self._seen)

    def __contains__(self, rel_path: object) -> bool:
        return rel_path in self._seen

    def poll(self, root: Path, now: float | None = None,
             proven: Callable[[FileStat], bool] | None = None) -> list[FileStat]:
        """Re-stat every tracked file under `root` and return (and stop tracking) the settled ones.

        Vanished files, and paths that are no longer plain files, are
        dropped. A returned file is the caller's now: if it changes again,
        an observer event or the rescan will `note()` it afresh. `proven`
        says whether a file, as it is now, already passed a check made while
        it settled: its header needs no second look.
        """
        now = self._clock() if now is None else now
        self._polled_at = now
        self._refresh(Path(root), now)
        settled = [stat for stat in self.due(now)
                   if (proven is not None and proven(stat)) or self._releasable(Path(root), stat, now)]
        for stat in settled:
            self.forget(stat.rel_path)
        return settled

    def _refresh(self, root: Path, now: float) -> None:
        """Look at every tracked file again, dropping those that are gone."""
        for rel_path in list(self._seen):
            current = stat_candidate(root, rel_path)
            if current is None:
                log.debug("%s: %s vanished while settling; no longer tracked.", self.name, rel_path)
                self.forget(rel_path)
            else:
                self._note(current, now)

    def _releasable(self, root: Path, stat: FileStat, now: float) -> bool:
        """Return True if a stable file's header is readable, or it has been unreadable too long."""
        if not stat.rel_path.lower().endswith(EXTENSIONS) or self._header_check(root / stat.rel_path):
            return True
        stable_for = now - self._seen[stat.rel_path].stable_since
        if stable_for >= self.unreadable_grace:
            log.info(
                "%s: %s has not changed for %.0f s but its image header is still unreadable; "
                "passing it on to be rejected.", self.name, stat.rel_path, stable_for,
            )
            return True
        return False
