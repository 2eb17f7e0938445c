"""The HTTP layer: a threading HTTP/1.1 server that turns sockets into Requests.

Keep-alive works because every answer carries an exact Content-Length and
every request body is read in full before answering; the only exception, an
oversized upload, is answered without reading and the connection closed.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from skylab_watch.emulator.admin import ADMIN_PREFIX, serve_admin
from skylab_watch.emulator.protocol import Request, Response, message_response, s3_error
from skylab_watch.emulator.routes import API_PREFIX, serve_api
from skylab_watch.emulator.store_api import MAX_UPLOAD_BYTES, STORE_PREFIX, entity_too_large, serve_store

if TYPE_CHECKING:
    from skylab_watch.emulator.emulator import Emulator

LOG = logging.getLogger(__name__)


def dispatch(emu: Emulator, req: Request) -> Response:
    """Send a request to the admin, store or API side by its path prefix."""
    if req.path.startswith(ADMIN_PREFIX):
        return serve_admin(emu, req)
    if req.path.startswith(STORE_PREFIX):
        return serve_store(emu, req)
    if req.path.startswith(API_PREFIX):
        return serve_api(emu, req)
    return message_response(404, f"no endpoint {req.method} {req.path}")


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows its Emulator."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's default of 5 resets bursts of concurrent connects

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, EmulatorHandler)

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
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

    def _refuse_chunked(self, path: str) -> None:
        """Like S3, a body without Content-Length is refused (411), never read as empty."""
        self.close_connection = True
        if path.startswith(STORE_PREFIX):
            self._send(s3_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.",
                                {"Connection": "close"}))
        else:
            self._send(message_response(411, "a request body needs a Content-Length header (no chunked bodies)"))

    def _handle(self) -> None:
        split = urlsplit(self.path)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self._refuse_chunked(split.path)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if split.path.startswith(STORE_PREFIX) and self.command == "PUT" and length > MAX_UPLOAD_BYTES:
            self.server.emulator.count_call("PUT store")
            self.close_connection = True
            self._send(entity_too_large(length))
            return
        body = self.rfile.read(length) if length > 0 else b""
        req = Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            response = dispatch(self.server.emulator, req)
        except Exception:  # a bug must not kill the connection without an answer
            LOG.exception("emulator: %s %s failed", self.command, self.path)
            response = message_response(500, "emulator internal error")
        self._send(response)

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
