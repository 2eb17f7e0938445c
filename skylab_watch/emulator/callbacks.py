"""Outgoing completion callbacks: a signed HTTP PATCH per finished job.

Delivery runs on its own thread so a slow or dead receiver never blocks the
API; a failed delivery is retried a few times with a short backoff and then
given up, recorded in the delivery log that the admin state shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import queue
import threading
import time
from typing import Any

import requests

LOG = logging.getLogger(__name__)
BACKOFF_SECONDS = (0.2, 0.5, 1.0)
TIMEOUT = (2.0, 5.0)


def sign(secret: str, timestamp: str, body: str) -> str:
    """Return base64(HMAC-SHA256(secret, f"{timestamp}:{body}")), as Studio signs."""
    digest = hmac.new(secret.encode(), f"{timestamp}:{body}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class CallbackSender:
    """A background thread that delivers queued callbacks; start() then send()."""

    def __init__(self, secret: str | None, backoff: tuple[float, ...] = BACKOFF_SECONDS) -> None:
        self._secret = secret
        self._backoff = backoff
        self._queue: queue.Queue[tuple[int, str, str]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []

    def start(self) -> None:
        """Start the delivery thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="emulator-callbacks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the delivery thread; undelivered callbacks are dropped."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def send(self, job_id: int, url: str, body: str) -> None:
        """Queue a PATCH of `body` (the job JSON) to `url`."""
        self._queue.put((job_id, url, body))

    def deliveries(self) -> list[dict[str, Any]]:
        """Return a copy of the delivery log, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear(self) -> None:
        """Forget the delivery log."""
        with self._lock:
            self._log.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job_id, url, body = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            self._deliver(job_id, url, body)

    def _deliver(self, job_id: int, url: str, body: str) -> None:
        """Try to PATCH once plus one retry per backoff step; never raise."""
        entry: dict[str, Any] = {"jobId": job_id, "url": url, "attempts": 0,
                                 "delivered": False, "lastStatus": None, "lastError": None}
        with self._lock:
            self._log.append(entry)
        for delay in (0.0, *self._backoff):
            if delay and self._stop.wait(delay):
                return
            with self._lock:
                entry["attempts"] += 1
            status, error = self._attempt(url, body)
            with self._lock:
                entry["lastStatus"], entry["lastError"] = status, error
                if status is not None and 200 <= status < 300:
                    entry["delivered"] = True
                    return
        LOG.warning("callback for job %s to %s gave up after %s attempts", job_id, url, entry["attempts"])

    def _attempt(self, url: str, body: str) -> tuple[int | None, str | None]:
        """PATCH once; return (status, None) or (None, error text)."""
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Skylab-Timestamp": timestamp}
        if self._secret:
            headers["X-Skylab-Signature"] = sign(self._secret, timestamp, body)
        try:
            response = requests.patch(url, data=body.encode(), headers=headers, timeout=TIMEOUT)
            return response.status_code, None
        except requests.RequestException as exc:
            return None, str(exc)
