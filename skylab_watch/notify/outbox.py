"""The sender thread: delivers the ledger's alert outbox to the notifiers, never on the work loop.

Each alert goes to every notifier that wants its event. A try is bounded by apprise's timeouts;
an alert some notifier did not take is tried again after `retry_seconds`, doubling up to an
hour, with its attempts and last error in the ledger. Notifiers that already took it are
remembered (in memory) so that they are not sent it twice while another one is down.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Protocol

from skylab_watch.ledger import Ledger
from skylab_watch.ledger.records import Alert

log = logging.getLogger("skylab_watch")

MAX_RETRY_SECONDS = 3600.0


class Transport(Protocol):
    """What the sender needs of a way to deliver messages (AppriseTransport)."""

    def name(self, index: int) -> str: ...

    def send(self, index: int, title: str, body: str, html: str | None = None) -> str | None: ...


def retry_delay(first: float, attempts: int) -> float:
    """Given the first wait and how many tries failed so far, return the wait before the next one."""
    return min(MAX_RETRY_SECONDS, first * 2 ** max(0, attempts - 1))


class AlertSender:
    """A thread that empties the outbox; `wake()` after an insert makes it look at once."""

    def __init__(self, ledger: Ledger, transport: Transport, wanted_by: Callable[[str], list[int]],
                 retry_seconds: float, poll_seconds: float = 1.0) -> None:
        self.ledger = ledger
        self.transport = transport
        self.wanted_by = wanted_by
        self.retry_seconds = retry_seconds
        self.poll_seconds = poll_seconds
        self._taken: dict[int, set[int]] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alert-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (an alert was just added)."""
        self._wake.set()

    def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop the thread, first giving due alerts up to `drain_seconds` to go out (the rest wait in the ledger)."""
        deadline = time.monotonic() + drain_seconds
        while drain_seconds and time.monotonic() < deadline and self.ledger.alerts_due(time.time(), 1):
            self.wake()
            time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.send_due()
            except Exception:  # noqa: BLE001 - the ledger may be busy; the outbox keeps the alerts
                log.exception("could not look at the alert outbox; trying again shortly")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def send_due(self) -> int:
        """Deliver every due alert once; return how many went out to all their notifiers."""
        sent = 0
        for alert in self.ledger.alerts_due(time.time()):
            if self._stop.is_set():
                break
            sent += self._deliver(alert)
        return sent

    def _deliver(self, alert: Alert) -> bool:
        taken = self._taken.setdefault(alert.id, set())
        errors = []
        for index in self.wanted_by(alert.event):
            if index in taken:
                continue
            error = self.transport.send(index, alert.title, alert.body, alert.html)
            if error is None:
                taken.add(index)
            else:
                errors.append(f"{self.transport.name(index)}: {error}")
        if not errors:
            self.ledger.alert_sent(alert.id, time.time())
            self._taken.pop(alert.id, None)
            return True
        wait = retry_delay(self.retry_seconds, alert.attempts + 1)
        self.ledger.alert_failed(alert.id, "; ".join(errors)[:1000], time.time() + wait)
        level = logging.WARNING if alert.attempts == 0 else logging.INFO
        log.log(level, "alert %r not delivered (try %d): %s; trying again in %.0f s", alert.title,
                alert.attempts + 1, "; ".join(errors), wait)
        return False
