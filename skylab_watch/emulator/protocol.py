"""Transport-neutral request and response values, and the two error shapes.

The API answers errors as JSON `{"message": ...}`; the object store answers
as S3 does, with an XML `<Error>` document. Keeping both here lets the
endpoint modules raise or return them without knowing about sockets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable
from xml.sax.saxutils import escape


@dataclass
class Request:
    """One parsed HTTP request; `params` merges the query string and a JSON body."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any] = field(default_factory=dict)
    route_id: str | None = None
    # The transport left the body unread (and will close the connection):
    # over MAX_BODY_BYTES (`declared_length` says its size) or chunked (-1).
    body_unread: bool = False
    declared_length: int = 0

    def header(self, name: str) -> str | None:
        """Return a header value, matching the name case-insensitively."""
        return self.headers.get(name.lower())


MAX_BODY_BYTES = 27 * 1024 * 1024  # the store's upload limit; the API never needs more


@dataclass
class Response:
    """An answer to send: status, raw body and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


class ApiError(Exception):
    """Raised by an endpoint to answer `status` with `{"message": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    """Return a JSON response (compact, UTF-8)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, body, "application/json", dict(headers or {}))


def message_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Return the API's error shape."""
    return json_response(status, {"message": message}, headers)


def s3_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Return an S3-style XML error document."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    ).encode()
    return Response(status, body, "application/xml", dict(headers or {}))
