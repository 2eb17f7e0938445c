"""The HTTP layer under the Studio client: one pooled session, timeouts,
translation of transport errors, and debug logging with secrets redacted.

Kept apart from the endpoint methods so that the endpoints read as a plain
list of the contract's calls.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Mapping

import requests
import urllib3
from requests.adapters import HTTPAdapter

from skylab_watch.redaction import REDACTED, redact_query_values
from skylab_watch.studio.errors import TransportError

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


def make_session(pool_size: int = 16) -> requests.Session:
    """Return a session whose connection pool is large enough for our worker pools."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def send(session: requests.Session, method: str, url: str, timeout: tuple[float, float],
         headers: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None,
         body: bytes | None = None, stream: bool = False) -> requests.Response:
    """Send one request and return the response, whatever its status.

    Raises TransportError (with `sent` telling whether the server may have
    seen the request) when no HTTP answer came back.
    """
    hdrs = dict(headers or {})
    _log_request(method, url, hdrs, params, body)
    try:
        response = session.request(method, url, headers=hdrs, params=params, data=body,
                                   timeout=timeout, stream=stream)
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


def _log_request(method: str, url: str, headers: Mapping[str, str], params: Any, body: bytes | None) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    shown = _describe_body(body, headers.get("Content-Type", ""))
    log.debug("> %s %s params=%s headers=%s body=%s", method, redact_url(url), params,
              redact_headers(headers), shown)


def _log_response(method: str, url: str, response: requests.Response, stream: bool) -> None:
    if not log.isEnabledFor(logging.DEBUG):
        return
    if stream:
        text = f"<streamed {response.headers.get('Content-Length', '?')} bytes>"
    else:
        text = _describe_body(response.content, response.headers.get("Content-Type", ""))
    log.debug("< %s %s -> %s %s", method, redact_url(url), response.status_code, text)


def _describe_body(body: bytes | None, content_type: str) -> str:
    if not body:
        return ""
    if "json" in content_type or "xml" in content_type or "text" in content_type:
        text = body.decode("utf-8", "replace")
        return text if len(text) <= _LOG_BODY_LIMIT else text[:_LOG_BODY_LIMIT] + "..."
    return f"<{len(body)} bytes>"


def json_body(payload: Mapping[str, Any] | None) -> bytes | None:
    """Return the JSON encoding of `payload`, or None for no body."""
    return None if payload is None else json.dumps(payload).encode("utf-8")
