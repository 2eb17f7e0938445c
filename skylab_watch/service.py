"""Talking to systemd: readiness, status, watchdog pings and stopping.

Works three ways: with systemd-python when it is installed, else by writing
the sd_notify datagram to `$NOTIFY_SOCKET` ourselves (the protocol is one
datagram of `KEY=value` lines), else not at all (a workstation, a test).

The watchdog is only fed while the daemon really makes progress: its work
loop came round recently *and* every observer is alive. A pass blocked on a
dead network share or a hung call stops the pings, and systemd restarts us.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Callable, Mapping

log = logging.getLogger("skylab_watch")

try:  # optional extra `systemd`
    from systemd import daemon as _sd_daemon
except ImportError:  # pragma: no cover - depends on the install
    _sd_daemon = None


class Notifier:
    """Send sd_notify messages, or do nothing when not started by systemd."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = env.get("NOTIFY_SOCKET") or None
        self.watchdog_seconds = watchdog_seconds(env)

    @property
    def enabled(self) -> bool:
        """True when systemd (or a test) listens for our notifications."""
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send `KEY=value` lines as one notification; return True if it was sent."""
        if not self.address:
            return False
        message = "\n".join(assignments)
        if _sd_daemon is not None and self.address == os.environ.get("NOTIFY_SOCKET"):
            return bool(_sd_daemon.notify(message))
        return _send_datagram(self.address, message.encode("utf-8"))

    def ready(self, status: str) -> bool:
        """Say start-up (scan and recovery) is done."""
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        """Update the one-line status `systemctl status` shows."""
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        """Feed the watchdog."""
        return self.send("WATCHDOG=1")

    def extend_start(self, seconds: float, status: str) -> bool:
        """Ask for more start-up time (waiting for Studio at boot is not a hung start)."""
        return self.send(f"EXTEND_TIMEOUT_USEC={int(seconds * 1_000_000)}", f"STATUS={status}")

    def reloading(self) -> bool:
        """Say a configuration reload has started."""
        return self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> bool:
        """Say shutdown has begun."""
        return self.send("STOPPING=1", "STATUS=stopping: finishing transfers in progress")


def watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """Return the watchdog timeout systemd set for this process, or None."""
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000
    except ValueError:
        return None


def _send_datagram(address: str, payload: bytes) -> bool:
    """Send one datagram to a unix socket path, or an abstract one when it starts with '@'.

    Never blocks: a listener that stops reading (not systemd, which always reads; a script or a
    benchmark) fills its socket, and a blocking send would then stall whoever reports status. A full
    socket drops the message, as a lost datagram would.
    """
    target = "\0" + address[1:] if address.startswith("@") else address
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
            sock.connect(target)
            sock.sendall(payload)
        return True
    except OSError as exc:
        log.debug("could not notify systemd at %s: %s", address, exc)
        return False


class HealthPinger:
    """A thread that feeds the watchdog only while `healthy()` says the daemon makes progress.

    healthy: returns None when all is well, else why not (logged once per episode).
    status: returns the STATUS= line, refreshed every `status_every` seconds.
    """

    def __init__(self, notifier: Notifier, healthy: Callable[[], str | None], status: Callable[[], str],
                 status_every: float = 10.0) -> None:
        self.notifier = notifier
        self.healthy = healthy
        self.status = status
        self.interval = max(0.1, (notifier.watchdog_seconds or status_every * 2) / 4)
        self.status_every = status_every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._complaint: str | None = None

    def start(self) -> None:
        """Start pinging (a no-op thread when systemd is not listening)."""
        if self.notifier.enabled:
            self._thread.start()

    def stop(self) -> None:
        """Stop pinging."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        last_status = 0.0
        while not self._stop.wait(self.interval):
            self._ping_if_healthy()
            if time.monotonic() - last_status >= self.status_every:
                last_status = time.monotonic()
                self.notifier.status(self.status())

    def _ping_if_healthy(self) -> None:
        problem = self.healthy()
        if problem is None:
            if self._complaint is not None:
                log.info("the work loop is making progress again; feeding the watchdog")
            self._complaint = None
            if self.notifier.watchdog_seconds:
                self.notifier.watchdog()
            return
        if self._complaint is None:
            log.error("not feeding the systemd watchdog: %s", problem)
        self._complaint = problem
