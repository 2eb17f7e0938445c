"""The completion-callback receiver: a small HTTP server for Studio's signed PATCH.

A callback only wakes the completion work early; it never changes the
ledger itself. The poll that follows asks Studio for the truth, so a lost
callback costs a poll interval and a forged or replayed one costs nothing:
it is refused with 401 and a log line before anything happens.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from skylab_watch.studio.signature import check_callback

log = logging.getLogger("skylab_watch")

MAX_BODY = 4 * 1024 * 1024
REMEMBERED_SIGNATURES = 4096


class CallbackReceiver:
    """Listen on host:port; for every authentic callback call `on_job(studio_job_id)`."""

    def __init__(self, host: str, port: int, secret: str, on_job: Callable[[int | None], None],
                 tolerance: float = 300.0) -> None:
        self._secret = secret
        self.on_job = on_job
        self.tolerance = tolerance
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler_class())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="callbacks", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound (port 0 picks a free one)."""
        host, port = self.server.server_address[:2]
        assert isinstance(host, str), "an AF_INET address has a text host"
        return host, port

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread.start()
        log.info("listening for Studio completion callbacks on %s:%d", *self.address)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()

    def judge(self, body: bytes, timestamp: str | None, signature: str | None) -> str | None:
        """Return None if the callback is authentic, fresh and new; else why it is refused."""
        reason = check_callback(self._secret, body, timestamp, signature, tolerance=self.tolerance)
        if reason:
            return reason
        assert signature is not None, "check_callback refuses a callback without a signature"
        with self._lock:
            if signature in self._seen:
                return "this exact callback was already received (replay)"
            self._seen[signature] = None
            while len(self._seen) > REMEMBERED_SIGNATURES:
                self._seen.popitem(last=False)
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PATCH(self) -> None:  # noqa: N802 - http.server's naming
                receiver._handle(self)

            do_POST = do_PATCH  # noqa: N815 - tolerate a POST as well

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug("callback receiver: " + fmt, *args)

        return Handler

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(request, 413, "too large")
            return
        body = request.rfile.read(length)
        reason = self.judge(body, request.headers.get("X-Skylab-Timestamp"),
                            request.headers.get("X-Skylab-Signature"))
        if reason:
            log.warning("refused a completion callback from %s: %s", request.client_address[0], reason)
            self._answer(request, 401, reason)
            return
        job_id = _job_id(body)
        log.info("Studio says job %s is finished; looking at it now", job_id)
        self._answer(request, 200, "ok")
        self.on_job(job_id)

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, message: str) -> None:
        data = json.dumps({"message": message}).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)


def _job_id(body: bytes) -> int | None:
    try:
        value = json.loads(body).get("id")
        return int(value) if value is not None else None
    except (ValueError, AttributeError, TypeError):
        return None
