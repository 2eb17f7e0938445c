"""The morning report: what happened to the photos of each watch over a window of time.

`build_report(ledger, since, until)` reads the ledger only and returns plain
figures (`Report`); `skylab_watch.report_render` turns them into text for a
terminal or HTML for an e-mail, and `Report.to_dict()` is what `--json`
prints. The same figures end `run --once` (its window is the run).

What each figure counts, per watch, within the window:
- found: versions of files first recorded in the window (rejections and
  duplicates included);
- sent: photos of the window that reached Studio (uploaded, queued,
  delivered, done, or failed once Studio had a record of them). The ledger
  keeps no upload time, so a photo counts once it is of the window and got
  that far;
- delivered: photos whose outputs landed in the window (`delivered_at`),
  whenever they were found;
- rejected / duplicates: files found in the window and refused at intake /
  held back as a copy of content already sent;
- failed: photos that ended failed in the window, each with its reason;
- jobs: jobs opened in the window, and how many of them failed;
- waited: found to delivered, median and longest, over the delivered ones;
- per hour: delivered photos divided by the window's length;
- paused: the watch's pauses as the ledger stands when the report is made
  (by hand with `skylab-watch pause`, or because its input folder is gone),
  each with why and since when; a pause lifted before then is not listed
  (a share-gone pause still shows in the notices, raised and cleared).

Credits used are NOT reported: Studio's answers tell nothing of credits
spent (the contract knows only "out of credits", a 402), so nothing in the
ledger says; the out-of-credits notices are listed with the other notices.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from skylab_watch.ledger import JobState, Ledger, Photo, PhotoState

__all__ = ["Report", "WatchFigures", "Problem", "NoticeEntry", "Pause", "build_report"]

REACHED_STUDIO = (PhotoState.UPLOADED, PhotoState.QUEUED, PhotoState.DELIVERING, PhotoState.DELIVERED,
                  PhotoState.DONE)


@dataclass(frozen=True)
class Problem:
    """One photo that was rejected or failed: where it is and why."""

    watch: str
    path: str
    state: str
    reason: str
    at: float


@dataclass(frozen=True)
class Pause:
    """A watch held when the report was made. by: `hand` (skylab-watch pause) or `share` (input folder gone)."""

    by: str
    reason: str
    since: float


@dataclass
class WatchFigures:
    """The figures of one watch over the window; durations in seconds (None when nothing was delivered)."""

    name: str
    found: int = 0
    sent: int = 0
    delivered: int = 0
    rejected: int = 0
    duplicates: int = 0
    failed: int = 0
    jobs: int = 0
    jobs_failed: int = 0
    waited_median: float | None = None
    waited_longest: float | None = None
    per_hour: float = 0.0
    problems: list[Problem] = field(default_factory=list)
    paused: list[Pause] = field(default_factory=list)


@dataclass(frozen=True)
class NoticeEntry:
    """A condition (out of credits, paused watch, output disk) raised or cleared in the window.

    watch: the watch it is about, None for daemon-wide ones (credits).
    cleared_at: None while it still stands.
    """

    key: str
    watch: str | None
    message: str
    raised_at: float
    cleared_at: float | None


@dataclass
class Report:
    """Per-watch figures and notices over [since, until] (Unix times)."""

    since: float
    until: float
    watches: list[WatchFigures]
    notices: list[NoticeEntry]

    @property
    def problems(self) -> list[Problem]:
        """Every rejection and failure of every watch, in the order they happened."""
        return sorted((p for w in self.watches for p in w.problems), key=lambda p: p.at)

    def total(self, figure: str) -> int:
        """Return the sum of a count (`found`, `delivered`, `failed`, ...) over every watch."""
        return sum(int(getattr(w, figure)) for w in self.watches)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain data for JSON: times as local ISO strings, durations in seconds."""
        watches = {}
        for w in self.watches:
            entry = asdict(w)
            entry.pop("name")
            entry["problems"] = [{**asdict(p), "at": iso_time(p.at)} for p in w.problems]
            entry["paused"] = [{**asdict(p), "since": iso_time(p.since)} for p in w.paused]
            watches[w.name] = entry
        totals = {f: self.total(f) for f in COUNTS}
        notices = [{**asdict(n), "raised_at": iso_time(n.raised_at),
                    "cleared_at": iso_time(n.cleared_at) if n.cleared_at else None} for n in self.notices]
        return {"since": iso_time(self.since), "until": iso_time(self.until), "totals": totals,
                "watches": watches, "notices": notices}


COUNTS = ("found", "sent", "delivered", "rejected", "duplicates", "failed", "jobs", "jobs_failed")
"""The counts of WatchFigures, in the order a report shows them."""


def build_report(ledger: Ledger, since: float, until: float, watches: Iterable[str] = ()) -> Report:
    """Given a ledger and a window of Unix times, return the figures of every watch that did something.

    `watches` (the configured ones) are listed even when they did nothing,
    so a silent watch shows as zeros rather than vanishing.
    """
    figures = {name: WatchFigures(name) for name in watches}
    waits: dict[str, list[float]] = {}
    for photo in ledger.photos_seen_between(since, until):
        entry = figures.setdefault(photo.watch, WatchFigures(photo.watch))
        _count_photo(entry, photo, since, until, waits.setdefault(photo.watch, []))
    for job in ledger.jobs_opened_between(since, until):
        entry = figures.setdefault(job.watch, WatchFigures(job.watch))
        entry.jobs += 1
        entry.jobs_failed += job.state in (JobState.FAILED, JobState.DELETED)
    _add_pauses(ledger, figures)
    hours = max(until - since, 1.0) / 3600.0
    for name, entry in figures.items():
        _set_waits(entry, waits.get(name, []))
        entry.per_hour = round(entry.delivered / hours, 1)
    ordered = [figures[name] for name in sorted(figures)]
    return Report(since, until, ordered, _notices(ledger, since, until, set(figures)))


def _count_photo(entry: WatchFigures, photo: Photo, since: float, until: float, waits: list[float]) -> None:
    """Add one photo of the window to its watch's figures."""
    found = since <= photo.found_at <= until
    entry.found += found
    state = photo.state
    if state in REACHED_STUDIO or (state == PhotoState.FAILED and photo.studio_id is not None):
        entry.sent += 1
    if photo.delivered_at is not None and since <= photo.delivered_at <= until:
        entry.delivered += 1
        waits.append(max(0.0, photo.delivered_at - photo.found_at))
    if state == PhotoState.DUPLICATE and found:
        entry.duplicates += 1
    elif state == PhotoState.REJECTED and found:
        entry.rejected += 1
        entry.problems.append(_problem(photo, photo.found_at))
    elif state == PhotoState.FAILED and since <= photo.updated_at <= until:
        entry.failed += 1
        entry.problems.append(_problem(photo, photo.updated_at))


def _add_pauses(ledger: Ledger, figures: dict[str, WatchFigures]) -> None:
    """Add the pauses standing now, by hand and share-gone (`watch:W` notices), to their watches."""
    for watch, (reason, since) in ledger.paused_by_hand().items():
        figures.setdefault(watch, WatchFigures(watch)).paused.append(Pause("hand", reason, since))
    for key, (message, since) in ledger.notices().items():
        kind, _, watch = key.partition(":")
        if kind == "watch" and watch:
            figures.setdefault(watch, WatchFigures(watch)).paused.append(Pause("share", message, since))


def _problem(photo: Photo, at: float) -> Problem:
    return Problem(photo.watch, photo.rel_path, str(photo.state), photo.reason or "no reason recorded", at)


def _set_waits(entry: WatchFigures, waits: list[float]) -> None:
    """Record the median and longest wait, in whole seconds to a tenth (None when nothing was delivered)."""
    if waits:
        entry.waited_median = round(statistics.median(waits), 1)
        entry.waited_longest = round(max(waits), 1)


def _notices(ledger: Ledger, since: float, until: float, watches: set[str]) -> list[NoticeEntry]:
    """Return the notices raised or cleared in the window, or standing through it."""
    entries = []
    for key, message, raised_at, cleared_at in ledger.notice_history(since):
        if raised_at <= until:
            entries.append(NoticeEntry(key, notice_watch(key, watches), message, raised_at, cleared_at))
    return entries


def notice_watch(key: str, watches: set[str]) -> str | None:
    """Return the watch a notice key is about (`watch:W`, `output:W`, `name:W:...`), None if daemon-wide."""
    parts = key.split(":", 1)
    if len(parts) < 2:
        return None
    rest = parts[1]
    for name in sorted(watches, key=len, reverse=True):
        if rest == name or rest.startswith(name + ":"):
            return name
    return None


def iso_time(timestamp: float) -> str:
    """Return a Unix time as local `YYYY-MM-DDTHH:MM:SS`, the form `--since` accepts back."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(timestamp))
