"""A WSGI application served by waitress on a background thread, with hard limits and a clean stop.

Why waitress: it parses requests strictly (a Content-Length that is not
plain digits is a 400, one over the body cap a 413 answered before the body is
read), closes connections idle for longer than a bound, stops accepting past a
connection limit, and serves every connection from one asynchronous I/O thread
plus a fixed pool of worker threads: 500 idle clients cost 500 sockets, not
500 threads.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

from waitress import wasyncore
from waitress.server import BaseWSGIServer, create_server

log = logging.getLogger("skylab_watch")

WSGIApp = Callable[..., Any]
STOP_SECONDS = 5
"""How long a stop waits for handlers still running before it gives up on them."""


@dataclass(frozen=True)
class WebLimits:
    """What one client, or many, may cost the daemon.

    idle_timeout: a connection with no bytes moving for this long is closed
      (a request half sent, or a kept-alive connection left open).
    connection_limit: past this many open client connections, new ones wait in
      the kernel's listen queue until one closes; memory and file descriptors
      stay bounded.
    threads: the fixed number of threads running handlers.
    max_body_bytes: a larger declared body is refused with 413 unread. 4 MiB
      holds a Studio job's JSON with the largest batch we send (1000 photos,
      about 1 KB each with their URLs) four times over.
    max_header_bytes: request line plus headers; Studio's are a few hundred bytes.
    """

    idle_timeout: float = 20.0
    connection_limit: int = 100
    threads: int = 4
    max_body_bytes: int = 4 * 1024 * 1024
    max_header_bytes: int = 32 * 1024

    @property
    def cleanup_seconds(self) -> float:
        """How often idle connections are looked for: an idle one is closed within 1.25 x idle_timeout."""
        return max(0.05, self.idle_timeout / 4)

    @property
    def loop_seconds(self) -> float:
        """How often the I/O loop wakes when nothing happens, to close idle connections on time."""
        return min(1.0, self.idle_timeout / 4)


class WebServer:
    """Serve `app` on host:port (port 0 picks a free one) from a background thread; start(), then stop()."""

    def __init__(self, host: str, port: int, app: WSGIApp, limits: WebLimits | None = None,
                 name: str = "web") -> None:
        self.limits = limits or WebLimits()
        self._name = name
        self._map: dict[int, Any] = {}
        self._stopping = threading.Event()
        self._closing = threading.Lock()
        self._closed = False
        _forward_waitress_logs()
        sock = _listening_socket(host, port)
        try:
            server = create_server(app, map=self._map, sockets=[sock], **_adjustments(self.limits))
        except BaseException:
            sock.close()
            raise
        assert isinstance(server, BaseWSGIServer), "one listening socket gives one waitress server"
        # waitress reads these two as whole seconds (int() on the way in) but computes with whatever it
        # holds: set the exact values, so that a timeout under a second (tests) is not rounded to 0.
        vars(server.adj).update(channel_timeout=self.limits.idle_timeout,
                                cleanup_interval=self.limits.cleanup_seconds)
        self._server = server
        self._address: tuple[str, int] = sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound."""
        return self._address

    def start(self) -> None:
        """Serve on the background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: close the listening socket and every connection; wait for the thread.

        Safe to call twice, or without start().
        """
        with self._closing:  # the loop thread may close the wake-up pipe the moment it sees the flag
            self._stopping.set()
            running = self._thread.is_alive() and not self._closed
            if running:
                self._server.pull_trigger()  # wake the I/O loop now rather than at its next timeout
        if not running:
            self._close()
            return
        self._thread.join(timeout=STOP_SECONDS + 1)
        if self._thread.is_alive():
            log.warning("%s: the web server thread did not stop within %d s", self._name, STOP_SECONDS + 1)

    def _serve(self) -> None:
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=self.limits.loop_seconds, map=self._map, use_poll=True, count=1)
        except Exception:
            log.exception("%s: the web server stopped on an unexpected error", self._name)
        finally:
            self._close()

    def _close(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
        self._server.task_dispatcher.shutdown(timeout=STOP_SECONDS)
        wasyncore.close_all(self._map)


def _adjustments(limits: WebLimits) -> dict[str, Any]:
    """Return waitress's settings for `limits` (names as waitress.adjustments spells them)."""
    return {
        "threads": limits.threads,
        # waitress counts its listening socket and its wake-up pipe among the connections
        "connection_limit": limits.connection_limit + 2,
        "channel_timeout": max(1, round(limits.idle_timeout)),  # exact values are set after creation
        "cleanup_interval": max(1, round(limits.cleanup_seconds)),
        "max_request_body_size": limits.max_body_bytes + 1,  # waitress refuses a length equal to it
        "max_request_header_size": limits.max_header_bytes,
        "asyncore_use_poll": True,  # select() fails past 1024 descriptors
        "asyncore_loop_timeout": limits.loop_seconds,
        "log_socket_errors": False,  # a client that hangs up is not worth a traceback
        "expose_tracebacks": False,
        "ident": "skylab-watch",
    }


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind one TCP socket for host:port (the first address it resolves to), with SO_REUSEADDR."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    return socket.create_server(address[:2], family=family, backlog=1024)


class _ToOurLog(logging.Handler):
    """Hands waitress's own log lines (connection limit reached, queue depth) to our logger."""

    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(record.levelno):
            log.handle(record)


def _forward_waitress_logs() -> None:
    """Route the `waitress` logger into ours once, so its lines never land raw on stderr."""
    waitress_log = logging.getLogger("waitress")
    if not any(isinstance(h, _ToOurLog) for h in waitress_log.handlers):
        waitress_log.addHandler(_ToOurLog())
        waitress_log.propagate = False
