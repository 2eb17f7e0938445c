"""A tiny threaded HTTP server on 127.0.0.1:0 standing in for a webhook (apprise json://) and a
healthchecks.io endpoint: it records every request, and can be told to be down (answer 500)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Use as a context manager; `url` is its base, `down` makes it answer 500 (and record nothing)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refused = 0
        self.down = False
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server convention
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    if receiver.down:
                        receiver.refused += 1
                    else:
                        receiver.received.append(Received(self.path, body))
                self.send_response(500 if receiver.down else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.apprise_url = f"json://127.0.0.1:{self.server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, path: str = "/alerts") -> list[dict[str, Any]]:
        """The JSON messages apprise posted to `path`."""
        with self._lock:
            return [r.json() for r in self.received if r.path == path]

    def titled(self, words: str) -> list[dict[str, Any]]:
        """The alerts whose title contains `words`."""
        return [a for a in self.alerts() if words in a["title"]]

    def pings(self) -> list[Received]:
        """Every request that is not an alert (health pings), in order."""
        with self._lock:
            return [r for r in self.received if r.path.startswith("/ping")]
