"""Typed errors of the Studio client, caught by meaning.

Like requests' exceptions, each class says whether the failure is worth
retrying. Transport failures are translated into `TransportError` so that no
caller needs to know about `requests` or `urllib3`. Every error carries the
HTTP status (None for transport errors) and the server's own message.
"""

from __future__ import annotations

import re

from skylab_watch.errors import SkylabWatchError
from skylab_watch.redaction import redact_query_values


class StudioError(SkylabWatchError):
    """A Studio call failed. `status` is the HTTP status, `message` the server's words."""

    retryable = False
    # Seconds the server asked us to wait (Retry-After), on any answer that carried one.
    retry_after: float | None = None

    def __init__(self, message: str, status: int | None = None, method: str = "", url: str = "") -> None:
        # Transport errors quote the request's URL (requests: "Max retries exceeded with url: /x?sig=...");
        # the message reaches the ledger and `status`, so a presigned query never stays in it.
        self.message = redact_query_values(message)
        self.status = status
        self.method = method
        self.url = redact_query_values(url)
        where = f" ({method} {self.url})" if method else ""
        code = f"{status}: " if status is not None else ""
        super().__init__(f"{code}{self.message}{where}")


class AuthError(StudioError):
    """401/403 from the API: the key is wrong or revoked. Not worth retrying; a person must fix the key."""


class OutOfCreditsError(StudioError):
    """The account has no credits (402, or a refusal that says so). The request is fine; pause and retry later."""


class NotFoundError(StudioError):
    """404: no such job, photo, profile or endpoint. Not worth retrying."""


class InvalidRequestError(StudioError):
    """422 (or another 4xx): the service refused the request as invalid. Not worth retrying as is."""


class RateLimitedError(StudioError):
    """429: too many requests. Worth retrying after `retry_after` seconds (None if not given)."""

    retryable = True

    def __init__(self, message: str, status: int | None = 429, method: str = "", url: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(message, status, method, url)
        self.retry_after = retry_after


class ServerError(StudioError):
    """5xx: trouble on the service's side. Worth retrying with backoff."""

    retryable = True


class TransportError(StudioError):
    """The request did not get an HTTP answer (DNS, refused, reset, timeout). Worth retrying.

    `sent` tells whether the request may have reached the server: False for a
    failed connect (safe to repeat anything), True for a read timeout or a
    dropped connection (repeating a create could act twice).
    """

    retryable = True

    def __init__(self, message: str, method: str = "", url: str = "", sent: bool = True) -> None:
        super().__init__(message, None, method, url)
        self.sent = sent


class StoreError(StudioError):
    """The object store refused a presigned PUT or GET (S3-style XML error). `code` is the S3 code."""

    def __init__(self, message: str, status: int | None, code: str = "", method: str = "", url: str = "") -> None:
        super().__init__(message, status, method, url)
        self.code = code
        self.retryable = status is not None and (status >= 500 or status == 429)


class BadDigestError(StoreError):
    """400 BadDigest: the bytes received do not match Content-MD5. Re-read and re-hash the file."""


class UrlExpiredError(StoreError):
    """403 from the store: the presigned URL expired or its signature does not match. Ask for a fresh URL."""


_CREDITS_WORDS = re.compile(r"credit|balance|payment|insufficient funds|top.?up|billing", re.IGNORECASE)


def is_out_of_credits(status: int, message: str) -> bool:
    """Given a refused API call, return True when it means "the account has no credits".

    Our assumption, not attested by any official client: a 402, or any other
    refusal (4xx but 404 and 429) whose message speaks of credits, balance or
    payment. Such a refusal pauses the work instead of failing the photo.
    """
    if status == 402:
        return True
    return 400 <= status < 500 and status not in (404, 429) and bool(_CREDITS_WORDS.search(message or ""))


def _error_class_for(status: int, message: str) -> type[StudioError]:
    """Given an HTTP status (and message) of a failed API call, return the error class for it."""
    if is_out_of_credits(status, message):
        return OutOfCreditsError
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 429:
        return RateLimitedError
    if status >= 500:
        return ServerError
    return InvalidRequestError


def api_error(status: int, message: str, method: str, url: str, retry_after: float | None = None) -> StudioError:
    """Return the typed error for a failed API answer."""
    cls = _error_class_for(status, message)
    if cls is RateLimitedError:
        return RateLimitedError(message, status, method, url, retry_after=retry_after)
    error = cls(message, status, method, url)
    error.retry_after = retry_after
    return error


class RedirectError(StudioError):
    """The API answered with a redirect (3xx). Never followed, so the API key never reaches another host.

    Not retried by the client: the answer will not change until a person
    points `studio.api_url` at where the API really is (`location` says where
    the server pointed, with any signature redacted).
    """

    def __init__(self, message: str, status: int | None, method: str = "", url: str = "",
                 location: str = "") -> None:
        super().__init__(message, status, method, url)
        self.location = location


class AnswerTooLarge(ServerError):
    """An API answer longer than the cap (`http.API_BODY_LIMIT`): a broken service or proxy.

    Studio trouble like a 5xx (the daemon backs off), but not repeated within
    the call: the same endless answer would only be read again.
    """

    retryable = False


class DownloadTooLarge(StudioError):
    """A download longer than its cap (a result or a background photo). Not retried within the call;
    a later fresh look may get a sane file, so the outcome table tries a bounded few times."""


class RefusedUrlError(StudioError):
    """A URL we never fetch: not http(s), a private or loopback address while the API itself is public,
    or a chain of redirects too long. Waiting will not change it: not worth retrying."""
