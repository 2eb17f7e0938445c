"""The HTTP layer under the Studio client: one pooled session, timeouts,
bounded answer bodies, translation of transport errors, and debug logging
with secrets redacted. Deadlines and reachable addresses are `transport`'s.

Kept apart from the endpoint methods so that the endpoints read as a plain
list of the contract's calls.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Any, Iterator, Mapping, Protocol

from typing import BinaryIO

import requests
import urllib3

from skylab_watch.redaction import REDACTED, redact_query_values
from skylab_watch.studio.errors import TransportError
from skylab_watch.studio.transport import bounded_session

log = logging.getLogger("skylab_watch.studio")

_SECRET_HEADERS = frozenset({"x-slt-api-key", "authorization", "proxy-authorization", "x-skylab-signature",
                             "x-amz-security-token", "cookie", "set-cookie"})
_LOG_BODY_LIMIT = 2000


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of `headers` safe to log: API key and signatures replaced."""
    return {k: (REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


def redact_url(url: str) -> str:
    """Return `url` with every query value replaced, so no line holds a usable presigned URL.

    Every value, not only the signature: X-Amz-Credential and
    X-Amz-Security-Token are secrets too, and a store may name them otherwise.
    The log filter does the same to every line; this keeps the client's own
    lines and error messages safe wherever else they are shown.
    """
    return redact_query_values(url)


API_BODY_LIMIT = 8 << 20
"""Longest API answer read (8 MiB). Studio's largest answers, a job with its photos or the account's
job list, are a few hundred KiB; anything longer is a broken service or proxy, not data."""

ERROR_BODY_LIMIT = 64 << 10
"""Longest part of an error answer read: enough for any message, never a whole endless page."""


def make_session(pool_size: int = 16) -> requests.Session:
    """Return a session of at most `pool_size` pooled connections per host, with guarded connections."""
    return bounded_session(pool_size)


class StreamedBody(Protocol):
    """A request body sent in chunks (a file read as it goes out): its length is known up front, so it goes
    with a Content-Length, and iterating it again starts again from the first byte (a retried request)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[bytes]: ...


Body = bytes | StreamedBody


def send(session: requests.Session, method: str, url: str, timeout: tuple[float, float],
         headers: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None,
         body: Body | None = None, stream: bool = True, redirects: bool = False) -> requests.Response:
    """Send one request and return the response, whatever its status, its body not read yet.

    Redirects are not followed unless asked: the caller decides where a
    redirect may lead. Raises TransportError (with `sent` telling whether the
    server may have seen the request) when no HTTP answer came back.
    """
    hdrs = dict(headers or {})
    _log_request(method, url, hdrs, params, body)
    try:
        response = session.request(method, url, headers=hdrs, params=params, data=body,
                                   timeout=timeout, stream=stream, allow_redirects=redirects)
    except requests.exceptions.ConnectTimeout as exc:
        raise TransportError(f"connect timed out: {exc}", method, redact_url(url), sent=False) from exc
    except requests.exceptions.ConnectionError as exc:
        sent = not _is_connect_failure(exc)
        raise TransportError(f"connection failed: {_short(exc)}", method, redact_url(url), sent=sent) from exc
    except requests.exceptions.Timeout as exc:
        raise TransportError(f"no answer within {timeout[1]:.0f} s", method, redact_url(url), sent=True) from exc
    except requests.exceptions.RequestException as exc:
        raise TransportError(f"request failed: {_short(exc)}", method, redact_url(url), sent=True) from exc
    _log_response(method, url, response, stream)
    return response


def read_body(response: requests.Response, limit: int, method: str, url: str, *,
              truncate: bool = False, too_large: type[Exception] | None = None) -> bytes:
    """Return the body of `response`, at most `limit` bytes; the response is closed after.

    Beyond `limit` (declared or read) the rest is cut off when `truncate`
    (an error page's first lines are enough), else `too_large(message,
    status, method, url)` is raised. A body that breaks off is a TransportError.
    """
    sink = io.BytesIO()
    try:
        copy_body(response, sink, limit, method, url, truncate=truncate, too_large=too_large)
    finally:
        response.close()
    return sink.getvalue()


def copy_body(response: requests.Response, sink: BinaryIO, limit: int, method: str, url: str, *,
              truncate: bool = False, too_large: type[Exception] | None = None, chunk_size: int = 1 << 16) -> int:
    """Stream the body of `response` into `sink`, at most `limit` bytes; return how many were written.

    See `read_body` for what happens beyond the limit. Decoded bytes are
    counted (a gzip bomb is cut like any other long body).
    """
    declared = response.headers.get("Content-Length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise _too_large(too_large, f"the answer declares {int(declared)} bytes, more than the "
                                    f"{_size(limit)} allowed", response.status_code, method, url)
    total = 0
    try:
        for chunk in response.iter_content(chunk_size):
            if total + len(chunk) > limit:
                if truncate:
                    sink.write(chunk[:limit - total])
                    return limit
                raise _too_large(too_large, f"the answer is longer than the {_size(limit)} allowed; cut off",
                                 response.status_code, method, url)
            sink.write(chunk)
            total += len(chunk)
    except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise TransportError(f"the answer broke off: {_short(exc)}", method, redact_url(url)) from exc
    return total


def _too_large(kind: type[Exception] | None, message: str, status: int, method: str, url: str) -> Exception:
    """Return the error for a body beyond its cap (no HTTP status shown: the answer was a 2xx, the body is wrong)."""
    if kind is None:
        return ValueError(message)
    return kind(message, None, method, redact_url(url))


def _size(limit: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if limit >= 1 << shift and limit % (1 << shift) == 0:
            return f"{limit >> shift} {unit}"
    return f"{limit} bytes"


def log_answer(method: str, url: str, response: requests.Response, body: bytes) -> None:
    """Log an API answer's body at debug level, once it is read (bounded, with secrets redacted)."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("< %s %s -> %s %s", method, redact_url(url), response.status_code,
                  _describe_body(body, response.headers.get("Content-Type", "")))


def _is_connect_failure(exc: requests.exceptions.ConnectionError) -> bool:
    """Return True when the connection was never established (the request never left).

    Decided by exception type, as requests itself does: urllib3 wraps a failed
    connect (refused, unreachable, name not resolved) in `NewConnectionError`
    under `MaxRetryError.reason`; anything else may have reached the server.
    """
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 300 else text[:300] + "..."


def _log_request(method: str, url: str, headers: Mapping[str, str], params: Any, body: Body | None) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    shown = _describe_body(body, headers.get("Content-Type", ""))
    log.debug("> %s %s params=%s headers=%s body=%s", method, redact_url(url), params,
              redact_headers(headers), shown)


def _log_response(method: str, url: str, response: requests.Response, stream: bool) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    if stream:
        text = f"<{response.headers.get('Content-Length', 'unknown')} bytes to read>"
    else:
        text = _describe_body(response.content, response.headers.get("Content-Type", ""))
    log.debug("< %s %s -> %s %s", method, redact_url(url), response.status_code, text)


def _describe_body(body: Body | None, content_type: str) -> str:
    if not body:
        return ""
    if isinstance(body, bytes) and ("json" in content_type or "xml" in content_type or "text" in content_type):
        text = body.decode("utf-8", "replace")
        return text if len(text) <= _LOG_BODY_LIMIT else text[:_LOG_BODY_LIMIT] + "..."
    return f"<{len(body)} bytes>"


def json_body(payload: Mapping[str, Any] | None) -> bytes | None:
    """Return the JSON encoding of `payload`, or None for no body."""
    return None if payload is None else json.dumps(payload).encode("utf-8")
