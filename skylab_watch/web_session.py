"""Who may press the status page's buttons: a session per sign-in, a CSRF field per session, a sign-in throttle.

The page's actions (retry, pause, resume) are POSTs that need the HTTP token,
as every action of the HTTP surface does. A browser cannot add an
`Authorization` header to a plain form, so a person signs in once with the
token (`POST /session`) and gets a cookie instead:

- each sign-in makes a fresh random session id (`secrets.token_urlsafe`),
  kept in this process's memory with the time it was last used: a session
  idle for SESSION_IDLE_SECONDS is gone, at most MAX_SESSIONS live at once
  (beyond that the least recently used goes), signing out removes it here,
  not only in that browser, and a restart forgets them all. So a cookie
  copied out of a browser dies with the session, and never gives the token
  away;
- it is HttpOnly (no script reads it), SameSite=Strict (no other site's page
  can make the browser send it), Path=/, and Max-Age (the idle time, renewed
  with every page load);
- each action form carries a hidden field derived from the session id
  (HMAC under a per-process key, so it cannot be computed without the key),
  compared in constant time: a forged cross-site POST lacks it even where
  SameSite is not honoured.
A wrong token goes to `SignInThrottle`: a few refusals are logged, a flood is
counted in one line a minute, and after MAX_REFUSALS_A_MINUTE refusals in a
minute (from anywhere) every sign-in is refused with 429 for the rest of it.
Session ids and CSRF values are never logged.

Nothing here knows about photos; it works on `skylab_watch.web.Request`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from http.cookies import CookieError, SimpleCookie
from typing import Callable
from urllib.parse import parse_qs

from skylab_watch.web import Request

__all__ = ["COOKIE", "CSRF_FIELD", "MAX_FORM_BYTES", "MAX_REFUSALS_A_MINUTE", "MAX_SESSIONS",
           "SESSION_IDLE_SECONDS", "TOKEN_FIELD", "Sessions", "SignInThrottle", "parse_form"]

COOKIE = "skylab_watch_session"
CSRF_FIELD = "csrf"
TOKEN_FIELD = "token"
MAX_FORM_BYTES = 4096
"""The page's forms hold one token or one CSRF value; anything larger is not one of ours."""
_MAX_FIELDS = 8
SESSION_IDLE_SECONDS = 12 * 3600
"""A session not used for this long is over (a studio screen reloading the page keeps its own alive)."""
MAX_SESSIONS = 64
"""Sessions kept at once; signing in beyond this drops the least recently used one."""
MAX_REFUSALS_A_MINUTE = 10
"""Wrong tokens, from anywhere, after which sign-ins are refused (429) for the rest of that minute."""
_MINUTE = 60.0

Clock = Callable[[], float]


def parse_form(request: Request) -> dict[str, str] | None:
    """Given a POST, return its `application/x-www-form-urlencoded` fields (first value of each).

    Return None for anything else (another content type, over MAX_FORM_BYTES,
    more than a few fields, not ASCII): the page only ever sends tiny forms.
    """
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if not request.body:
        return {}
    if content_type != "application/x-www-form-urlencoded" or len(request.body) > MAX_FORM_BYTES:
        return None
    try:
        fields = parse_qs(request.body.decode("ascii"), keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


class Sessions:
    """The browsers signed in with `token`: random ids in memory, each with the time it was last used.

    Thread-safe (the server answers on several threads). `clock` is
    monotonic time, given so tests can age a session without waiting.
    """

    def __init__(self, token: str, clock: Clock = time.monotonic, idle_seconds: float = SESSION_IDLE_SECONDS,
                 max_sessions: int = MAX_SESSIONS) -> None:
        self._token = token
        self._key = secrets.token_bytes(32)
        self._clock = clock
        self._idle = idle_seconds
        self._max = max_sessions
        self._last_used: OrderedDict[str, float] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def token_matches(self, given: str) -> bool:
        """True if `given` (typed into the sign-in form) is the token; compared in constant time."""
        return hmac.compare_digest(given.strip().encode(), self._token.encode())

    def start(self) -> str:
        """Return the id of a new session; drop the least recently used one beyond the limit."""
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._last_used[session] = self._clock()
            while len(self._last_used) > self._max:
                self._last_used.popitem(last=False)
        return session

    def session_of(self, request: Request) -> str | None:
        """Return the live session the request's cookie names (and mark it used now), or None."""
        given = _cookie(request, COOKIE)
        if not given:
            return None
        now = self._clock()
        with self._lock:
            last = self._last_used.get(given)
            if last is None:
                return None
            if now - last >= self._idle:
                del self._last_used[given]
                return None
            self._last_used[given] = now
            self._last_used.move_to_end(given)
        return given

    def signed_in(self, request: Request) -> bool:
        """True if the request carries the cookie of a live session."""
        return self.session_of(request) is not None

    def end(self, request: Request) -> None:
        """Forget the session the request's cookie names, here: the cookie is worthless from now on."""
        with self._lock:
            self._last_used.pop(_cookie(request, COOKIE), None)

    def csrf_value(self, session: str) -> str:
        """The hidden field every action form of `session`'s page carries."""
        return hmac.new(self._key, f"csrf\0{session}".encode(), hashlib.sha256).hexdigest()

    def form_allowed(self, request: Request, form: dict[str, str]) -> bool:
        """True if the request has a live session's cookie and the form that session's CSRF field."""
        session = self.session_of(request)
        given = form.get(CSRF_FIELD, "")
        return session is not None and hmac.compare_digest(given.encode(), self.csrf_value(session).encode())

    def set_cookie(self, session: str) -> tuple[str, str]:
        """The Set-Cookie header that signs a browser in to `session` (or renews it), for the idle time."""
        return ("Set-Cookie", f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/; Max-Age={int(self._idle)}")

    @staticmethod
    def clear_cookie() -> tuple[str, str]:
        """The Set-Cookie header that signs a browser out."""
        return ("Set-Cookie", f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")


class QuietLog:
    """Say which log line, if any, each refusal earns, so that a client hammering the surface cannot flood the log.

    The first refusal after a quiet minute is logged as itself; the ones
    after it are counted, and the first refusal a minute or more after the
    last line logs the count. `one` and `many` name what was refused ("a
    sign-in to the status page", "sign-ins to the status page").
    """

    def __init__(self, one: str, many: str, clock: Clock = time.monotonic) -> None:
        self._one, self._many, self._clock = one, many, clock
        self._logged_at: float | None = None
        self._unlogged = 0
        self._lock = threading.Lock()

    def refused(self, client: str, why: str) -> str | None:
        """Record one refusal of `client`; return the log line it earns, or None to stay quiet."""
        now = self._clock()
        with self._lock:
            if self._logged_at is not None and now - self._logged_at < _MINUTE:
                self._unlogged += 1
                return None
            counted, since, self._unlogged, self._logged_at = self._unlogged, self._logged_at, 0, now
        if counted and since is not None:
            minutes = int((now - since) // _MINUTE)
            span = "minute" if minutes <= 1 else f"{minutes} minutes"
            return f"http: {counted + 1} more refused {self._many} in the last {span}, the latest from {client}: {why}"
        return f"http: refused {self._one} from {client}: {why}"


def token_refusals(clock: Clock = time.monotonic) -> QuietLog:
    """The QuietLog of requests refused for want of the token (or a session)."""
    return QuietLog("a request without the token", "requests without the token", clock)


class SignInThrottle:
    """Count wrong tokens: say which log line (if any) each refusal earns (`QuietLog`), and when sign-ins are
    closed.

    Closing: MAX_REFUSALS_A_MINUTE refusals in a minute (a window opened by
    the first of them) close sign-ins until that minute is over. Both count
    every client together: the token is one secret, guessed from anywhere.
    """

    def __init__(self, clock: Clock = time.monotonic, limit: int = MAX_REFUSALS_A_MINUTE) -> None:
        self._clock = clock
        self._limit = limit
        self._window_start = -_MINUTE
        self._in_window = 0
        self._log = QuietLog("a sign-in to the status page", "sign-ins to the status page", clock)
        self._lock = threading.Lock()

    def closed_for(self) -> float:
        """Return the seconds sign-ins stay refused (429), or 0 if a sign-in may be tried now."""
        now = self._clock()
        with self._lock:
            left = self._window_start + _MINUTE - now
            return left if self._in_window >= self._limit and left > 0 else 0.0

    def refused(self, client: str, why: str) -> str | None:
        """Record one refused sign-in from `client`; return the log line it earns, or None to stay quiet."""
        now = self._clock()
        with self._lock:
            if now - self._window_start >= _MINUTE:
                self._window_start, self._in_window = now, 0
            self._in_window += 1
        return self._log.refused(client, why)


def _cookie(request: Request, name: str) -> str:
    """Return the value of cookie `name` in the request, or "" if absent or the header is malformed."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.header("Cookie") or "")
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""
