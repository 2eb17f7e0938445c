"""The daemon's HTTP surface (config `http:`): /api/status, /metrics, pause/resume/retry, the status page `/`.

Token rules, in one place (`refusal`):
- POST actions always need `Authorization: Bearer TOKEN`;
- read-only views (GET) need it too unless the surface listens on loopback,
  where only local users can reach it anyway, and the request's Host header
  names this machine: a web page whose host name an attacker re-points at
  127.0.0.1 (DNS rebinding) reaches the port from the visitor's browser, but
  with its own name in Host, so it reads nothing without the token.
Tokens are compared in constant time. Where reads are not open, a request
without the token (or a page session) gets the same 401 whatever its path,
before any route is matched (`StatusPage.gate`): watch names cannot be
probed. Routes added from elsewhere (the Studio callback, which proves
itself with its HMAC signature) are served as they are, without the token
rule. The status page (`page_routes`) adds
the browser's way to the same actions: a session cookie signed in with the
token, and a CSRF field in each form.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import time
from typing import Callable, Iterable
from urllib.parse import urlsplit

from prometheus_client.registry import Collector

from skylab_watch.commands.retry import retry_photo, retryable_failures
from skylab_watch.config.schema import HttpConfig
from skylab_watch.ledger import Ledger
from skylab_watch.metrics import CONTENT_TYPE, metrics_registry, render
from skylab_watch.page_routes import StatusPage
from skylab_watch.status import build_report
from skylab_watch.web import Handler, Request, Response, Route, Router, WebLimits, WebServer, normal_path
from skylab_watch.web_session import QuietLog, Sessions, token_refusals

log = logging.getLogger("skylab_watch")

PAUSE_REASON = "paused over HTTP"
ACTIONS = ("pause", "resume", "retry")
READ_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))
"""On the JSON and metrics answers: never sniffed as something else, never kept by a cache or a proxy
(they name files and reasons)."""


def is_loopback(host: str) -> bool:
    """True if `host` (as configured in http.listen) is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything, so it is treated as reachable


def needs_token(listen_host: str, method: str) -> bool:
    """True if a request with `method` must carry the token on a surface listening on `listen_host`."""
    return method.upper() != "GET" or not is_loopback(listen_host)


def names_this_machine(request: Request) -> bool:
    """True if the request's Host header is a loopback name or address (or absent: no browser omits it)."""
    given = request.header("Host")
    if given is None:
        return True
    try:
        name = urlsplit(f"//{given.strip()}").hostname
    except ValueError:
        return False
    return name is not None and is_loopback(name)


def reads_open(listen_host: str, request: Request) -> bool:
    """True if `request` may read a view without the token: loopback listener, and Host names this machine."""
    return not needs_token(listen_host, "GET") and names_this_machine(request)


def token_matches(request: Request, token: str) -> bool:
    """True if the request carries `Authorization: Bearer <token>` (compared in constant time)."""
    scheme, _, given = (request.header("Authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def refusal(listen_host: str, token: str, request: Request, quiet: QuietLog | None = None) -> Response | None:
    """Return the 401 answer if `request` lacks a token it needs; None if it may go on.

    The refusal is logged through `quiet` when given (a count a minute, not a line a request)."""
    open_read = request.method.upper() == "GET" and reads_open(listen_host, request)
    if open_read or token_matches(request, token):
        return None
    line = (quiet or token_refusals()).refused(request.client, f"{request.method} {request.path}")
    if line is not None:
        log.warning("%s", line)
    return Response.message(401, "this request needs the token: Authorization: Bearer TOKEN",
                            headers=(("WWW-Authenticate", 'Bearer realm="skylab-watch"'),))


class HttpSurface:
    """Serve the views and actions for `watches` from `ledger`; `extra` routes (the callback) join as they are."""

    def __init__(self, config: HttpConfig, ledger: Ledger, watches: list[str],
                 loop_age: Callable[[], float] | None = None, extra: Iterable[Route] = (),
                 limits: WebLimits | None = None, telemetry: Collector | None = None) -> None:
        self._config = config
        self._ledger = ledger
        self._watches = list(watches)
        self._registry = metrics_registry(ledger, loop_age, [telemetry] if telemetry is not None else [])
        self._refusals = token_refusals()
        routes = [self._guarded("/api/status", "GET", self.status), self._guarded("/metrics", "GET", self.metrics)]
        for name in self._watches:
            for action in ACTIONS:
                routes.append(self._guarded(f"/api/watches/{name}/{action}", "POST", self._action(name, action)))
        page = StatusPage(ledger, self._watches, Sessions(config.token),
                          reads_open=lambda request: reads_open(config.host, request),
                          bearer_ok=lambda request: token_matches(request, config.token), act=self._action,
                          refusals=self._refusals)
        routes += page.routes(ACTIONS)
        extra = list(extra)
        own_proof = {normal_path(route.path) for route in extra}  # the callback: its HMAC, not the token

        def gate(request: Request) -> Response | None:
            return None if request.path in own_proof else page.gate(request)
        self.server = WebServer(config.host, config.port, Router([*routes, *extra], gate), limits, name="http")

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound (port 0 picks a free one)."""
        return self.server.address

    def start(self) -> None:
        """Serve on a background thread."""
        self.server.start()
        host, port = self.address
        log.info("HTTP surface (/, /metrics, /api/status) listening on %s:%d", host, port)

    def stop(self) -> None:
        """Stop serving and close every socket."""
        self.server.stop()

    def _guarded(self, path: str, method: str, handler: Handler) -> Route:
        def guarded(request: Request) -> Response:
            refused = refusal(self._config.host, self._config.token, request, self._refusals)
            return refused or handler(request)
        return Route(path, method, guarded, takes_body=False)

    def status(self, request: Request) -> Response:
        """GET /api/status: the JSON of `skylab-watch status --json`."""
        return Response(200, json.dumps(build_report(self._ledger, self._watches), indent=2).encode(),
                        headers=READ_HEADERS)

    def metrics(self, request: Request) -> Response:
        """GET /metrics: the Prometheus text format."""
        return Response(200, render(self._registry), content_type=CONTENT_TYPE, headers=READ_HEADERS)

    def _action(self, watch: str, action: str) -> Handler:
        def act(request: Request) -> Response:
            if action == "pause":
                done = self._ledger.pause_watch(watch, PAUSE_REASON, time.time())
                text = "paused" if done else "already paused"
            elif action == "resume":
                text = "resumed" if self._ledger.resume_watch(watch) else "was not paused"
            else:
                text = f"{self._retry_failed(watch)} failed photo(s) will be sent again"
            log.info("http: %s %s from %s: %s", action, watch, request.client, text)
            return Response.message(200, f"{watch}: {text}")
        return act

    def _retry_failed(self, watch: str) -> int:
        """Move the newest version of each failed photo of `watch` back to ready (as `skylab-watch retry`)."""
        failed = retryable_failures(self._ledger, watch)
        for photo in failed:
            retry_photo(self._ledger, photo)
        return len(failed)
