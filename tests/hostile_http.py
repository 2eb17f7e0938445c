"""A small hostile HTTP server for tests: raw bytes on a loopback socket, dripped, endless or redirecting,
as a broken service or a proxy in between might send them. Each server records the request heads it got."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from typing import Callable

Answer = Callable[[socket.socket, bytes], None]


class HostileServer:
    """Serve every connection on 127.0.0.1:<ephemeral> with `answer(sock, request_head)`; use as a context manager."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                head = _read_head(self.request)
                if head is None:
                    return
                outer.heads.append(head)
                try:
                    outer.answer(self.request, head)
                except OSError:
                    pass  # the client cut us off: that is what the tests want

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler, bind_and_activate=True)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _read_head(sock: socket.socket) -> bytes | None:
    """Read a request head (and a small body, by Content-Length); None if the client closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head


def drip(data: bytes, every: float = 0.2) -> Answer:
    """Answer `data` one byte every `every` seconds (headers included, if `data` holds them)."""
    def answer(sock: socket.socket, head: bytes) -> None:
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            time.sleep(every)
    return answer


def endless(status_line: bytes = b"HTTP/1.1 200 OK", content_type: bytes = b"application/json",
            chunk: bytes = b"[0" + b",0" * 32767) -> Answer:
    """Answer a body that never ends (no Content-Length, close-delimited), as fast as the client reads."""
    def answer(sock: socket.socket, head: bytes) -> None:
        sock.sendall(status_line + b"\r\nContent-Type: " + content_type + b"\r\nConnection: close\r\n\r\n")
        while True:
            sock.sendall(chunk)
    return answer


def fixed(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    """Answer once with `status`, `headers` and `body` (Content-Length that of `body` unless `headers` says)."""
    def answer(sock: socket.socket, head: bytes) -> None:
        fields = {"Content-Length": str(len(body)), "Connection": "close", **(headers or {})}
        lines = [f"HTTP/1.1 {status} X", *[f"{k}: {v}" for k, v in fields.items()]]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return answer


def header_value(head: bytes, name: str) -> str | None:
    """Return the value of header `name` in a recorded request head, or None."""
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower().encode():
            return value.strip().decode()
    return None
