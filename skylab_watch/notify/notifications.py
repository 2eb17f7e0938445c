"""What the daemon sees of notifications: start, one call per pass of the work loop, close.

Everything on the loop's side is a ledger read or one INSERT into the outbox; delivery and
pings run on their own threads. Without a `notify:` section only the unclean-stop marker is
kept (and its finding logged), so turning alerts on later loses nothing of that.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Callable, Iterable

from skylab_watch.config import NotifyConfig, ReportConfig
from skylab_watch.ledger import Ledger
from skylab_watch.notify import digest
from skylab_watch.notify.conditions import ConditionWatcher
from skylab_watch.notify.digest import FailureDigest
from skylab_watch.notify.marker import RunningMarker
from skylab_watch.notify.morning import DailyReport
from skylab_watch.notify.outbox import AlertSender
from skylab_watch.notify.pings import HealthPings
from skylab_watch.notify.stalls import StallWatch
from skylab_watch.unfinished import EXIT_DONE, EXIT_REJECTED

log = logging.getLogger("skylab_watch")

DRAIN_SECONDS = 3.0
"""At a stop, how long alerts already due may take to go out; the rest wait in the outbox for the next start."""


class Notifications:
    """Alerts and pings of one daemon run. `health()` returns None while the work loop is healthy."""

    def __init__(self, config: NotifyConfig | None, ledger: Ledger, once: bool,
                 health: Callable[[], str | None], report: ReportConfig | None = None,
                 watches: Iterable[str] = ()) -> None:
        self.config = config
        self.ledger = ledger
        self.once = once
        self.started_at = time.time()
        self.host = socket.gethostname()
        self.marker = RunningMarker(ledger.path)
        self.sender: AlertSender | None = None
        self.pings = HealthPings(config.ping_url, config.ping_seconds, health) if config and config.ping_url else None
        self._watchers: tuple[ConditionWatcher, FailureDigest, StallWatch] | None = None
        # Made here, not at start(), so that a test can move its clock before the daemon starts.
        self.daily = (DailyReport(report, ledger, watches, f"skylab-watch on {self.host}: ")
                      if report is not None and self.wanted_by("report") else None)

    def wanted_by(self, event: str) -> list[int]:
        """Return the indexes of the notifiers that take `event`."""
        if self.config is None:
            return []
        return [i for i, t in enumerate(self.config.targets)
                if event in (t.events if t.events is not None else self.config.events)]

    def start(self) -> None:
        """Claim the running marker (alert if the last run did not stop cleanly), start the sender and pings."""
        previous = self.marker.claim()
        if previous is not None:
            log.warning("the previous run (%s) did not stop cleanly: killed, crashed, restarted by the watchdog "
                        "or a power cut. The ledger carries on where it was.", previous)
        cfg = self.config
        if cfg is not None and cfg.targets:
            from skylab_watch.notify.transport import AppriseTransport
            self.sender = AlertSender(self.ledger, AppriseTransport([t.url for t in cfg.targets]), self.wanted_by,
                                      cfg.retry_seconds)
            self._watchers = (ConditionWatcher(self.ledger),
                              FailureDigest(self.ledger, cfg.digest_seconds, self.started_at),
                              StallWatch(self.ledger, cfg.stall_factor, cfg.stall_floor_seconds))
            self.sender.start()
            if previous is not None:
                self.alert("unclean_stop", "started after an unclean stop",
                           f"The previous run ({previous}) did not stop cleanly: it was killed, crashed, was "
                           "restarted by the watchdog, or the machine lost power. Nothing is lost: the ledger "
                           "carries on where it was and work in progress is redone.")
        if self.pings is not None:
            if self.once:
                self.pings.ping_in_background("/start")
            else:
                self.pings.start_periodic()

    def alert(self, event: str, title: str, body: str) -> None:
        """Put an alert in the outbox if a notifier takes its event (one INSERT), and wake the sender."""
        if self.sender is None or not self.wanted_by(event):
            return
        self.ledger.add_alert(event, f"skylab-watch on {self.host}: {title}", body, time.time())
        self.sender.wake()

    def on_pass(self) -> None:
        """One pass of the work loop: turn what changed in the ledger into alerts."""
        if self._watchers is None:
            return
        conditions, failures, stalls = self._watchers
        for change in conditions.changes():
            self.alert(change.event, change.title, change.body)
        if failures.due():
            self._send_digest(failures)
        for title, body in stalls.stalled():
            self.alert("stalled", title, body)
        if self.daily is not None and self.daily.send_if_due() and self.sender is not None:
            self.sender.wake()

    def _send_digest(self, failures: FailureDigest, now: float | None = None) -> None:
        found = failures.collect(now)
        if found is not None:
            self.alert(digest.EVENT, *found)

    def close(self, exit_code: int | None, summary: str) -> None:
        """A clean stop: send the last digest, let due alerts go out briefly, final ping, remove the marker."""
        if self._watchers is not None:
            self._send_digest(self._watchers[1], now=time.time() + digest.SETTLE_SECONDS)
        if self.sender is not None:
            self.sender.stop(drain_seconds=DRAIN_SECONDS)
        if self.pings is not None:
            self.pings.stop()
            if self.once:
                # Done with rejections is a finished run: the rejections are in the summary and the report,
                # a fail ping would page someone for a file a photographer dropped by mistake.
                if exit_code in (EXIT_DONE, EXIT_REJECTED):
                    self.pings.ping("", summary)
                else:
                    self.pings.ping("/fail", f"exit code {exit_code}: {summary}")
        self.marker.release()
