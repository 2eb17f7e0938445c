"""A small WSGI application: one handler per (path, method); everything else is refused plainly.

It knows nothing of Studio or photos, so that later routes (metrics, a status
page) join the same server by adding a `Route`. What it guarantees to every
handler: the path and method were declared, and a route that takes a body got
one whose length was declared. The server in front (waitress) has already
answered a malformed or negative Content-Length (400) and one over the body
cap (413) before the application runs, without reading such a body.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable, Iterable, Mapping

log = logging.getLogger("skylab_watch")

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Request:
    """What a handler sees of one request: method, path, headers, the whole body, the peer's address."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""
    client: str = ""

    def header(self, name: str) -> str | None:
        """Return the value of header `name` (any case), or None if it was not sent."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    """A status, a body and extra headers; `message` builds the usual {"message": ...} JSON answer."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def message(cls, status: int, text: str, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        """Return a JSON answer {"message": text}: the shape Studio's own errors have."""
        return cls(status, json.dumps({"message": text}).encode(), headers=headers)


Handler = Callable[[Request], Response]
Gate = Callable[[Request], "Response | None"]
"""Asked before any route is matched (headers only, no body): an answer refuses the request, None lets it on."""


@dataclass(frozen=True)
class Route:
    """`handler` answers `method` at `path`; `takes_body` routes insist on a declared Content-Length."""

    path: str
    method: str
    handler: Handler
    takes_body: bool = True


def normal_path(path: str) -> str:
    """Return `path` without a trailing slash ("/" stays "/"): `/cb` and `/cb/` are one route."""
    return path.rstrip("/") or "/"


class Router:
    """A WSGI application dispatching to its routes: unknown path 404, known path other method 405.

    A `gate` answers first, so a refusal it gives cannot tell a path that exists from one that does not.
    """

    def __init__(self, routes: Iterable[Route], gate: Gate | None = None) -> None:
        self._gate = gate
        self._routes: dict[str, dict[str, Route]] = {}
        for route in routes:
            self._routes.setdefault(normal_path(route.path), {})[route.method.upper()] = route

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        response = self.respond(environ)
        reason = HTTPStatus(response.status).phrase
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body))),
                   *response.headers]
        start_response(f"{response.status} {reason}", headers)
        return [response.body]

    def respond(self, environ: dict[str, Any]) -> Response:
        """Given a WSGI environ, return the answer: the gate's refusal, the route's, or why there is none."""
        if self._gate is not None:
            refused = self._gate(_request(environ, takes_body=False))
            if refused is not None:
                return refused
        methods = self._routes.get(normal_path(environ.get("PATH_INFO") or "/"))
        if methods is None:
            return Response.message(404, "nothing is served at this path")
        route = methods.get(str(environ.get("REQUEST_METHOD", "")).upper())
        if route is None:
            allowed = ", ".join(sorted(methods))
            return Response.message(405, f"this path only answers {allowed}", headers=(("Allow", allowed),))
        if route.takes_body and "CONTENT_LENGTH" not in environ:
            return Response.message(411, "a Content-Length header is required")
        request = _request(environ, route.takes_body)
        try:
            return route.handler(request)
        except Exception:  # a bug in one handler answers 500 and is logged; the server carries on
            log.exception("web: the handler of %s %s failed", route.method, route.path)
            return Response.message(500, "internal error")


def _request(environ: dict[str, Any], takes_body: bool) -> Request:
    """Build the Request; the body is read in full (the server has bounded and buffered it already)."""
    headers = {key[5:].replace("_", "-").lower(): str(value)
               for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if key in environ:
            headers[key.replace("_", "-").lower()] = str(environ[key])
    body = b""
    if takes_body:
        length = int(environ.get("CONTENT_LENGTH") or 0)  # waitress refused anything but digits
        body = environ["wsgi.input"].read(length) if length else b""
    return Request(method=str(environ["REQUEST_METHOD"]).upper(), path=normal_path(environ.get("PATH_INFO") or "/"),
                   headers=headers, body=body, client=str(environ.get("REMOTE_ADDR", "")))
