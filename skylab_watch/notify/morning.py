"""The daily report: made from the ledger at `report.at`, local time, and put in the alert outbox.

When it goes:
- once a day, at the first pass of the work loop at or after `at` (the loop comes round every
  second or so), in service mode and with `run --once` alike;
- exactly once per local day, even across restarts and crashes: the day is claimed in the
  ledger's `schedule` table in the same transaction that puts the report in the outbox;
- late: a daemon that was not running at `at` sends that day's report at its first pass up to
  `late_hours` after it (default 5: a 07:00 report still goes at a 11:30 start, not at 13:00);
  later than that, the day is skipped and the log says so (the next report covers its hours
  again when since_hours is 24 or more);
- the window: from `since_hours` before `at` until the moment it is made, so a late report
  also tells what happened since `at`.

From the outbox it goes like every alert: bounded attempts on the sender thread, retried while
the notifier is down, never on the work loop. Making it is a read of the window's photos on
the loop, once a day.
"""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from typing import Callable, Iterable

from skylab_watch.config import ReportConfig
from skylab_watch.ledger import Ledger
from skylab_watch.report import Report, build_report
from skylab_watch.report_render import render_html, render_text

log = logging.getLogger("skylab_watch")

EVENT = "report"
SCHEDULE = "report"
"""The report's row in the ledger's schedule table."""


def slot_of(day: date, at: str) -> float:
    """Given a local day and `HH:MM`, return that moment as a Unix time (local time, DST included)."""
    hours, minutes = (int(part) for part in at.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes).timestamp()


def latest_slot(now: float, at: str) -> tuple[date, float]:
    """Return the day and Unix time of the last `at` at or before `now` (yesterday's before today's `at`)."""
    today = datetime.fromtimestamp(now).date()
    slot = slot_of(today, at)
    if now >= slot:
        return today, slot
    yesterday = today - timedelta(days=1)
    return yesterday, slot_of(yesterday, at)


def report_title(report: Report) -> str:
    """Return the subject line: the day's headline figures, so a glance at the inbox says how the night went."""
    paused = sum(len(w.paused) > 0 for w in report.watches)
    held = f", {paused} watch(es) paused" if paused else ""
    return (f"daily report: {report.total('delivered')} delivered, {report.total('rejected')} rejected, "
            f"{report.total('failed')} failed{held}")


class DailyReport:
    """Decides on each pass whether the day's report is due, and if so makes it and claims the day."""

    def __init__(self, config: ReportConfig, ledger: Ledger, watches: Iterable[str], prefix: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.ledger = ledger
        self.watches = tuple(watches)
        self.prefix = prefix
        self.clock = clock
        """Where the time of day comes from; tests move it to just before `at`."""
        self._done = ledger.last_day(SCHEDULE)
        self._skipped: str | None = None

    def due(self, now: float) -> tuple[str, float] | None:
        """Return (day, slot) of the report due at `now`, or None if it is not time, or it was sent or skipped."""
        day, slot = latest_slot(now, self.config.at)
        name = day.isoformat()
        if self._done is not None and self._done >= name:
            return None
        if now - slot > self.config.late_hours * 3600:
            if self._skipped != name:
                self._skipped = name
                log.warning("the daily report of %s (due at %s) is skipped: the daemon was not running then nor "
                            "within report.late_hours (%g h). `skylab-watch report --since` shows any window.",
                            name, self.config.at, self.config.late_hours)
            return None
        return name, slot

    def send_if_due(self) -> bool:
        """If the report is due, make it and put it in the outbox with its day claimed; return True if it was put."""
        now = self.clock()
        due = self.due(now)
        if due is None:
            return False
        day, slot = due
        report = build_report(self.ledger, slot - self.config.since_hours * 3600, now, watches=self.watches)
        alert = (EVENT, f"{self.prefix}{report_title(report)}", render_text(report), render_html(report))
        # The outbox keeps the sender's time (time.time), whatever clock decided that the report is due.
        claimed = self.ledger.claim_day(SCHEDULE, day, time.time(), alert)
        self._done = day  # claimed here, or by another run of the daemon first: either way this day is done
        if claimed:
            log.info("the daily report of %s is in the alert outbox: %s", day, report_title(report))
        return claimed
