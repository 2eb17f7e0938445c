"""Who may press the status page's buttons: a session cookie from the token, and a CSRF field per form.

The page's actions (retry, pause, resume) are POSTs that need the HTTP token,
as every action of the HTTP surface does. A browser cannot add an
`Authorization` header to a plain form, so a person signs in once with the
token (`POST /session`) and gets a cookie instead:

- the cookie holds HMAC(per-process key, token), never the token itself, so
  a cookie copied out of a browser does not give the token away, and every
  cookie dies with the daemon process (a restart signs everyone out);
- it is HttpOnly (no script reads it), SameSite=Strict (no other site's page
  can make the browser send it) and Path=/;
- each action form carries a hidden field derived from the session value
  (HMAC again, so it cannot be computed without the key), compared in
  constant time: a forged cross-site POST lacks it even where SameSite is
  not honoured (double submit).

Nothing here knows about photos; it works on `skylab_watch.web.Request`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from skylab_watch.web import Request

__all__ = ["COOKIE", "CSRF_FIELD", "MAX_FORM_BYTES", "TOKEN_FIELD", "Sessions", "parse_form"]

COOKIE = "skylab_watch_session"
CSRF_FIELD = "csrf"
TOKEN_FIELD = "token"
MAX_FORM_BYTES = 4096
"""The page's forms hold one token or one CSRF value; anything larger is not one of ours."""
_MAX_FIELDS = 8


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
    """Sessions signed in with `token`; the key making them lives only as long as this object."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._key = secrets.token_bytes(32)

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()

    @property
    def _session(self) -> str:
        return self._mac("session", self._token)

    def token_matches(self, given: str) -> bool:
        """True if `given` (typed into the sign-in form) is the token; compared in constant time."""
        return hmac.compare_digest(given.strip().encode(), self._token.encode())

    def signed_in(self, request: Request) -> bool:
        """True if the request carries a valid session cookie."""
        return hmac.compare_digest(_cookie(request, COOKIE).encode(), self._session.encode())

    def csrf_value(self) -> str:
        """The hidden field every action form of a signed-in page carries."""
        return self._mac("csrf", self._session)

    def form_allowed(self, request: Request, form: dict[str, str]) -> bool:
        """True if the request has a valid session cookie and the form the matching CSRF field."""
        given = form.get(CSRF_FIELD, "")
        return self.signed_in(request) and hmac.compare_digest(given.encode(), self.csrf_value().encode())

    def set_cookie(self) -> tuple[str, str]:
        """The Set-Cookie header that signs a browser in (a session cookie: gone when the browser closes)."""
        return ("Set-Cookie", f"{COOKIE}={self._session}; HttpOnly; SameSite=Strict; Path=/")

    @staticmethod
    def clear_cookie() -> tuple[str, str]:
        """The Set-Cookie header that signs a browser out."""
        return ("Set-Cookie", f"{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")


def _cookie(request: Request, name: str) -> str:
    """Return the value of cookie `name` in the request, or "" if absent or the header is malformed."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(request.header("Cookie") or "")
    except CookieError:
        return ""
    morsel = jar.get(name)
    return morsel.value if morsel is not None else ""
