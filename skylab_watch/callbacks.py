"""The completion-callback receiver: Studio's signed PATCH, served at the path of `callback.public_url`.

A callback only wakes the completion work early; it never changes the
ledger's photos or jobs itself. The poll that follows asks Studio for the
truth, so a lost callback costs a poll interval and a forged or replayed one
costs nothing: it is refused with 401 and a log line before anything happens.
Replays are refused across restarts too: every accepted signature is kept
(through the `first_sight` callable, the ledger's in the daemon) for as long
as its timestamp could still pass the freshness check.

The HTTP side is `skylab_watch.web`: waitress with a body cap, idle timeouts
and a connection limit; only PATCH at the one configured path is answered.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from skylab_watch.errors import SkylabWatchError
from skylab_watch.studio.signature import DEFAULT_TOLERANCE_SECONDS, check_callback
from skylab_watch.web import Request, Response, Route, Router, WebLimits, WebServer

log = logging.getLogger("skylab_watch")

FirstSight = Callable[[str, float, float], bool]
"""(signature, now, keep_seconds) -> True the first time that signature is seen; `Ledger.first_sight_of_callback`."""

CALLBACK_METHOD = "PATCH"
"""The method Studio sends callbacks with (studio-api.md, "Completion callback")."""


class CallbackReceiver:
    """Listen on host:port at `path`; for every authentic, fresh, new callback call `on_job(studio_job_id)`."""

    def __init__(self, host: str, port: int, secret: str, on_job: Callable[[int | None], None],
                 first_sight: FirstSight, path: str = "/", tolerance: float = DEFAULT_TOLERANCE_SECONDS,
                 limits: WebLimits | None = None, own_server: bool = True) -> None:
        self._secret = secret
        self.on_job = on_job
        self._first_sight = first_sight
        self.path = path
        self.tolerance = tolerance
        self.route = Route(path, CALLBACK_METHOD, self.handle)
        # own_server=False: the route is served by the HTTP surface (http_surface.py), which listens on host:port
        self.server = WebServer(host, port, Router([self.route]), limits, name="callbacks") if own_server else None

    @property
    def keep_seconds(self) -> float:
        """How long a signature must be remembered: a timestamp passes for `tolerance` either side of now."""
        return 2 * self.tolerance + 60

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound (port 0 picks a free one)."""
        assert self.server is not None, "a receiver without its own server has no address of its own"
        return self.server.address

    def start(self) -> None:
        """Serve on a background thread (nothing to do when the HTTP surface serves the route)."""
        if self.server is None:
            log.info("listening for Studio completion callbacks on the HTTP surface at %s", self.path)
            return
        self.server.start()
        host, port = self.address
        log.info("listening for Studio completion callbacks on %s:%d%s", host, port, self.path)

    def stop(self) -> None:
        """Stop serving and close every socket."""
        if self.server is not None:
            self.server.stop()

    def judge(self, body: bytes, timestamp: str | None, signature: str | None) -> str | None:
        """Return None if the callback is authentic, fresh and new; else why it is refused.

        Raise SkylabWatchError if the replay record cannot be kept (the ledger is unwritable).
        """
        reason = check_callback(self._secret, body, timestamp, signature, tolerance=self.tolerance)
        if reason:
            return reason
        assert signature is not None, "check_callback refuses a callback without a signature"
        if not self._first_sight(signature.strip(), time.time(), self.keep_seconds):
            return "this exact callback was already received (replay)"
        return None

    def handle(self, request: Request) -> Response:
        """Answer one callback request: 200 and wake the daemon, 401 if refused, 503 if it cannot be judged."""
        try:
            reason = self.judge(request.body, request.header("X-Skylab-Timestamp"),
                                request.header("X-Skylab-Signature"))
        except SkylabWatchError as exc:
            log.warning("cannot judge a completion callback from %s now (%s); Studio may send it again, "
                        "and polling finds the job anyway", request.client, exc)
            return Response.message(503, "cannot record this callback now; try again later")
        if reason:
            log.warning("refused a completion callback from %s: %s", request.client, reason)
            return Response.message(401, reason)
        job_id = _job_id(request.body)
        log.info("Studio says job %s is finished; looking at it now", job_id)
        self.on_job(job_id)
        return Response.message(200, "ok")


def _job_id(body: bytes) -> int | None:
    try:
        value = json.loads(body).get("id")
        return int(value) if value is not None else None
    except (ValueError, AttributeError, TypeError):
        return None
