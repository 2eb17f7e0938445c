"""Health pings in the healthchecks.io convention: URL for success, URL/start, URL/fail with a short body.

Best-effort: each ping has a short timeout and runs off the work loop; a ping that does not
arrive is logged once and never retried (the next one says the same thing).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable
from urllib.parse import urlsplit

import requests

log = logging.getLogger("skylab_watch")

TIMEOUT = (3.0, 5.0)
MAX_BODY = 1000


class HealthPings:
    """Pings `url` every `interval` seconds while `problem()` is None, else `url/fail` with the problem."""

    def __init__(self, url: str, interval: float, problem: Callable[[], str | None]) -> None:
        self.url = url.rstrip("/")
        self.interval = interval
        self.problem = problem
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ping(self, suffix: str = "", body: str = "") -> bool:
        """Send one ping (suffix "", "/start" or "/fail"); return True if the endpoint answered 2xx."""
        try:
            answer = requests.post(self.url + suffix, data=body[:MAX_BODY].encode("utf-8"), timeout=TIMEOUT)
            ok = answer.ok
            why = f"HTTP {answer.status_code}"
        except requests.RequestException as exc:
            ok, why = False, type(exc).__name__
        if not ok and not self._failing:
            log.warning("health ping to %s%s did not arrive (%s); the next one is tried as usual",
                        urlsplit(self.url).netloc, suffix, why)
        self._failing = not ok
        return ok

    def ping_in_background(self, suffix: str = "", body: str = "") -> None:
        """Send one ping on its own thread (never on the work loop)."""
        self._thread = threading.Thread(target=self.ping, args=(suffix, body), name="health-ping", daemon=True)
        self._thread.start()

    def start_periodic(self) -> None:
        """Service mode: ping now and every `interval` seconds, /fail while the daemon is unhealthy."""
        self._thread = threading.Thread(target=self._run, name="health-pings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the periodic pings (or wait for the /start ping), so that a last ping comes after them."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(TIMEOUT[0] + TIMEOUT[1] + 1)

    def _run(self) -> None:
        while True:
            problem = self.problem()
            if problem is None:
                self.ping()
            else:
                self.ping("/fail", problem)
            if self._stop.wait(self.interval):
                return
