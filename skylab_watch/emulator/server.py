"""The HTTP layer: a threading HTTP/1.1 server that turns sockets into Requests.

It knows nothing of Studio: it is handed one `handle(request) -> response`
callable (the way a requests adapter only implements `send`) and only does
HTTP framing. Keep-alive works because every answer carries an exact
Content-Length and every request body is read in full before answering; the
only exception, a body over MAX_BODY_BYTES, is left unread (the Request says
so), answered, and the connection closed.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from skylab_watch.emulator.protocol import MAX_BODY_BYTES, Handler, Request, Response, message_response

LOG = logging.getLogger(__name__)


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that passes every request to one `handle` callable."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default of 5 resets bursts of concurrent connects

    def __init__(self, address: tuple[str, int], handle: Handler) -> None:
        self.handle = handle
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, EmulatorHandler)

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut idle keep-alive connections, so a stopped emulator answers nobody.

        Without this a pooled client could keep talking to the old instance's
        handler threads after a restart on the same port.
        """
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class EmulatorHandler(BaseHTTPRequestHandler):
    """Reads one request, dispatches it, writes the Response."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: EmulatorHTTPServer

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        split = urlsplit(self.path)
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        unread = chunked or length > MAX_BODY_BYTES
        body = self.rfile.read(length) if 0 < length and not unread else b""
        req = Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            body_unread=unread,
            declared_length=-1 if chunked else length,
        )
        try:
            response = self.server.handle(req)
        except Exception:  # a bug must not kill the connection without an answer
            LOG.exception("emulator: %s %s failed", self.command, split.path)
            response = message_response(500, "emulator internal error")
        if unread:
            self.close_connection = True
            response.headers.setdefault("Connection", "close")
        try:
            self._send(response)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout, a stop): nothing to tell
            self.close_connection = True

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        LOG.debug("emulator: " + format, *args)
