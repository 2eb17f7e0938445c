"""The routes of the status page: `GET /`, signing in and out, and the page's action forms.

Who may do what (the HTTP surface's token rules, extended for browsers):
- `GET /` follows the read rule of every view: open on loopback (to requests
  whose Host names this machine, see `http_surface`); elsewhere it
  needs `Authorization: Bearer TOKEN` or a signed-in session cookie, and
  without either answers 401 with the sign-in form alone.
- `POST /session` with the token signs a browser in (a fresh session and its
  cookie; see `web_session`); a wrong token is 401, logged without what was
  typed (a flood is counted, one line a minute), and after a burst of wrong
  tokens every sign-in is 429 for the rest of that minute.
- `POST /session/end` ends the session here, not only in that browser.
- `POST /watches/NAME/{retry,pause,resume}` needs a valid Bearer header, or a
  session cookie plus the form's CSRF field. Without a session it is 401,
  with a session but a missing or wrong CSRF field 403; nothing changes
  either way. A success answers 303 to `/` (POST/redirect/GET), so reloading
  the page never repeats the action.
- Whenever reads are not open (off loopback, or a Host naming another
  machine), `gate` answers every request without the token or a session
  with the same 401 before any route is matched, so an unknown watch and a
  known one look alike; only signing in and out pass (and the callback,
  which `http_surface` lets through for its HMAC to judge).
The actions themselves are the HTTP surface's (`act`), shared with
`POST /api/watches/...`.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from skylab_watch import report as window_report
from skylab_watch.ledger import Ledger
from skylab_watch.status import build_report
from skylab_watch.status_page import PageView, render_message, render_page, render_sign_in
from skylab_watch.web import Handler, Request, Response, Route
from skylab_watch.web_session import TOKEN_FIELD, QuietLog, Sessions, SignInThrottle, parse_form, token_refusals

log = logging.getLogger("skylab_watch")

HTML = "text/html; charset=utf-8"
THROUGHPUT_WINDOW_SECONDS = 3600.0
"""The page's throughput is the morning report's figures over the last hour."""
SIGN_IN_PATHS = ("/session", "/session/end")
"""Reached without the token or a session: they are how a browser gets and ends one."""
SECURITY_HEADERS = (
    # The page carries its CSRF value: never cached, never framed, no script, forms post only here.
    ("Cache-Control", "no-store"),
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)

ActionFactory = Callable[[str, str], Handler]
"""Given (watch, action), return the handler doing it (HttpSurface._action)."""
BearerCheck = Callable[[Request], bool]
"""A test of one request: does it carry the token (or, for `reads_open`, may it read without)?"""


class StatusPage:
    """Serve the page of `watches` from `ledger`; `reads_open(request)` is True when that GET needs no token."""

    def __init__(self, ledger: Ledger, watches: list[str], sessions: Sessions, reads_open: BearerCheck,
                 bearer_ok: BearerCheck, act: ActionFactory, throttle: SignInThrottle | None = None,
                 refusals: QuietLog | None = None) -> None:
        self._ledger = ledger
        self._watches = list(watches)
        self._sessions = sessions
        self._reads_open = reads_open
        self._bearer_ok = bearer_ok
        self._act = act
        self._throttle = throttle or SignInThrottle()
        self._refusals = refusals or token_refusals()

    def routes(self, actions: tuple[str, ...]) -> list[Route]:
        """Return the page's routes: the page, sign in and out, and one form route per watch and action."""
        routes = [Route("/", "GET", self.page, takes_body=False),
                  Route("/session", "POST", self.sign_in),
                  Route("/session/end", "POST", self.sign_out)]
        for name in self._watches:
            for action in actions:
                routes.append(Route(f"/watches/{name}/{action}", "POST", self._form_action(name, action)))
        return routes

    def gate(self, request: Request) -> Response | None:
        """Return the one 401 for a request that needs the token and carries neither it nor a session; else None.

        Asked before any route is matched, so the answer says nothing about
        which paths (which watches) exist. Where reads are open (loopback,
        Host naming this machine) every route applies its own rule instead:
        the page shows every watch there anyway.
        """
        if self._reads_open(request) or request.path in SIGN_IN_PATHS:
            return None
        if self._bearer_ok(request) or self._sessions.signed_in(request):
            return None
        self._note_refusal(request, f"{request.method} {request.path}")
        return _sign_in_needed()

    def page(self, request: Request) -> Response:
        """GET /: the status page, or the sign-in form alone (401) off loopback without a token or session."""
        session = self._sessions.session_of(request)
        if not (self._reads_open(request) or session is not None or self._bearer_ok(request)):
            return _sign_in_needed()
        now = time.time()
        hourly = window_report.build_report(self._ledger, now - THROUGHPUT_WINDOW_SECONDS, now, self._watches)
        view = PageView(status=build_report(self._ledger, self._watches),
                        hourly={w.name: (w.delivered, w.per_hour) for w in hourly.watches},
                        csrf=self._sessions.csrf_value(session) if session is not None else None,
                        generated=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)))
        renew = (self._sessions.set_cookie(session),) if session is not None else ()
        return _html(200, render_page(view), *renew)

    def sign_in(self, request: Request) -> Response:
        """POST /session: with the right token, start a session, set its cookie and go back to the page.

        While the throttle is closed every sign-in is 429, the right token too:
        otherwise guessing would simply go on through the lockout.
        """
        closed_for = self._throttle.closed_for()
        if closed_for > 0:
            self._log_refusal(request, "too many wrong tokens in the last minute")
            wait = str(max(1, round(closed_for)))
            return _html(429, render_message("skylab-watch: sign in",
                                             f"Too many wrong tokens: try again in {wait} s."), ("Retry-After", wait))
        form = parse_form(request)
        if form is None or not self._sessions.token_matches(form.get(TOKEN_FIELD, "")):
            self._log_refusal(request, "wrong token")
            return _html(401, render_sign_in("Sign in with the HTTP token.", failed=True))
        log.info("http: a browser at %s signed in to the status page", request.client)
        return _see_other(self._sessions.set_cookie(self._sessions.start()))

    def _log_refusal(self, request: Request, why: str) -> None:
        """Count a refused sign-in; log it only when the throttle says the line is due (no flood)."""
        line = self._throttle.refused(request.client, why)
        if line is not None:
            log.warning("%s", line)

    def _note_refusal(self, request: Request, what: str) -> None:
        """Log a refused request, a count a minute at most (`QuietLog`): probing cannot flood the log."""
        line = self._refusals.refused(request.client, what)
        if line is not None:
            log.warning("%s", line)

    def sign_out(self, request: Request) -> Response:
        """POST /session/end: end the session here (its cookie is worthless from now on) and in this browser."""
        self._sessions.end(request)
        return _see_other(self._sessions.clear_cookie())

    def _form_action(self, watch: str, action: str) -> Handler:
        handler = self._act(watch, action)

        def act(request: Request) -> Response:
            refused = self._refusal(request)
            if refused is not None:
                why = "no session" if refused.status == 401 else "missing or wrong form field"
                self._note_refusal(request, f"{action} of {watch}: {why}")
                return refused
            done = handler(request)
            if done.status != 200:
                return _html(done.status, render_message("skylab-watch", f"{watch}: {action} did not work"))
            return _see_other()
        return act

    def _refusal(self, request: Request) -> Response | None:
        """Return the answer refusing a form action (401 no session, 403 bad form), or None if allowed."""
        if self._bearer_ok(request):
            return None
        form = parse_form(request)
        if form is not None and self._sessions.form_allowed(request, form):
            return None
        if not self._sessions.signed_in(request):
            return _html(401, render_sign_in("Sign in with the HTTP token to do this."))
        return _html(403, render_message("skylab-watch: refused",
                                         "This form is out of date or did not come from this page: "
                                         "reload the page and try again."))


def _html(status: int, body: bytes, *headers: tuple[str, str]) -> Response:
    challenge = (("WWW-Authenticate", 'Bearer realm="skylab-watch"'),) if status == 401 else ()
    return Response(status, body, content_type=HTML, headers=(*SECURITY_HEADERS, *challenge, *headers))


def _sign_in_needed() -> Response:
    """The 401 of every view and action that needs the token: the sign-in form alone."""
    return _html(401, render_sign_in("Sign in with the HTTP token to see this daemon's status."))


def _see_other(*headers: tuple[str, str]) -> Response:
    """A 303 back to the page: the browser follows it with a GET."""
    return Response(303, b"", content_type=HTML, headers=(("Location", "/"), *SECURITY_HEADERS, *headers))
