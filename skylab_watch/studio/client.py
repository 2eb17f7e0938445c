"""The Studio API client: every call of the contract (`studio-api.md`).

One `StudioClient` holds one pooled `requests.Session`, always sends with a
(connect, read) timeout and an overall deadline, and runs every call under
one `RetryPolicy`. Errors come back as the typed errors of
`skylab_watch.studio.errors`.

Every byte from Studio is bounded: API answers (`http.API_BODY_LIMIT`),
downloads (`MAX_DOWNLOAD_BYTES`), and the time any exchange may take. API
calls never follow a redirect, so the API key is only ever sent to
`base_url`; presigned store URLs never carry it, are fetched only over
http(s), and lead (redirects included) to a private or loopback address only
when the API itself is on one (see `transport`).

Used as a context manager so that the pool is closed when done::

    with StudioClient(url, key) as studio:
        job = studio.create_job("packshots-20261125-0912-3f2a", profile_id=12)
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any, BinaryIO, Callable, Mapping, TypeVar
from urllib.parse import urljoin

import requests

from skylab_watch import __version__
from skylab_watch.studio import http
from skylab_watch.studio.errors import (
    AnswerTooLarge, BadDigestError, DownloadTooLarge, NotFoundError, RedirectError, RefusedUrlError, ServerError,
    StoreError, StudioError, UrlExpiredError, api_error,
)
from skylab_watch.studio.records import StudioJob, PhotoResult, job_state, jobs_in_front_of, photo_result
from skylab_watch.studio.retry import RetryPolicy
from skylab_watch.studio.transport import AddressPolicy, Guard
from skylab_watch.telemetry import Telemetry

DEFAULT_URL = "https://studio.skylabtech.ai:443"
API_PREFIX = "/api/public/v1/"
DEFAULT_TIMEOUT = (10.0, 60.0)
DEFAULT_API_DEADLINE = 120.0
"""Seconds one API call may take in all, however slowly the server drips its answer."""
DEFAULT_TRANSFER_DEADLINE = 900.0
"""Seconds one upload or download may take in all: a 256 MiB result at 2.5 Mbit/s, and the
15 minutes a presigned URL lives (a transfer outliving its URL would be refused anyway)."""
MAX_DOWNLOAD_BYTES = 256 << 20
"""Largest result downloaded (256 MiB). Studio's results stay within its input limits (27 MP, 6400 px
a side); the largest file that can honestly hold 27 MP is a 16-bit RGBA PNG that does not compress at
all, 27e6 x 8 bytes = 206 MiB; anything longer is not a result, and is refused as it streams in."""
MAX_BACKGROUND_BYTES = 32 << 20
"""Largest background photo downloaded: backgrounds are uploaded photos, so Studio's 27 MiB input
limit applies to them (with a margin)."""
MAX_REDIRECTS = 5
"""Redirects followed by a store download (each hop checked like the first URL); API calls follow none."""
CLIENT_HEADER = f"skylab-watch-{__version__}"
REGULAR_JOB_TAGGING = "job=photo&api=true"

T = TypeVar("T")


class StudioClient:
    """A client for one Studio account.

    base_url: the service root (no `/api/...`). api_key: sent only to the API,
    never to the object store, never logged. timeout: (connect, read) seconds,
    mandatory. api_deadline / transfer_deadline: seconds one API call / one
    upload or download may take in all. max_download_bytes: the longest
    result downloaded. retry: the policy every call runs under. telemetry:
    where transfers, failed exchanges and the last good API answer are
    counted (one of its own if not given; never a process-global one).
    """

    def __init__(self, base_url: str, api_key: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT,
                 retry: RetryPolicy | None = None, pool_size: int = 16,
                 session: requests.Session | None = None, api_deadline: float = DEFAULT_API_DEADLINE,
                 transfer_deadline: float = DEFAULT_TRANSFER_DEADLINE,
                 max_download_bytes: int = MAX_DOWNLOAD_BYTES, telemetry: Telemetry | None = None) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.api_deadline = api_deadline
        self.transfer_deadline = transfer_deadline
        self.max_download_bytes = max_download_bytes
        self.addresses = AddressPolicy(self.base_url)
        self.retry = retry or RetryPolicy()
        self.session = session or http.make_session(pool_size)
        self.telemetry = telemetry or Telemetry()

    def __repr__(self) -> str:
        return f"StudioClient({self.base_url!r})"

    def __enter__(self) -> StudioClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.session.close()

    # ------------------------------------------------------------------ plumbing

    def _headers(self) -> dict[str, str]:
        return {
            "X-SLT-API-KEY": self._api_key,
            "X-SLT-API-CLIENT": CLIENT_HEADER,
            "Content-Type": "application/json",
            "Accept": "text/plain",  # as the contract's clients send; the server answers JSON regardless
        }

    def request(self, method: str, endpoint: str, params: Mapping[str, Any] | None = None,
                payload: Mapping[str, Any] | None = None, retry: RetryPolicy | None = None) -> Any:
        """Call `endpoint` (relative to /api/public/v1/) and return the decoded JSON answer.

        Raises the typed StudioError for a non-2xx answer or a transport failure,
        after the retry policy has given up.
        """
        url = self.base_url + API_PREFIX + endpoint
        policy = retry or self.retry
        return policy.call(lambda: self._counted("api", lambda: self._request_once(method, url, params, payload)),
                           method, what=f"{method} {endpoint}")

    def _counted(self, target: str, attempt: Callable[[], T]) -> T:
        """Run one attempt of an exchange with `target` ("api", "store"); count it in telemetry if it fails.

        Each attempt counts, the ones the retry policy repeats within the call too:
        the figure is how often Studio failed us, not how often we gave up.
        """
        try:
            return attempt()
        except StudioError as exc:
            self.telemetry.record_studio_error(exc, target)
            raise

    def _request_once(self, method: str, url: str, params: Mapping[str, Any] | None,
                      payload: Mapping[str, Any] | None) -> Any:
        with Guard(self.api_deadline, self.addresses):
            response = http.send(self.session, method, url, self.timeout, headers=self._headers(),
                                 params=params, body=http.json_body(payload))
            if 300 <= response.status_code < 400:
                location = http.redact_url(response.headers.get("Location", ""))
                response.close()
                raise RedirectError(f"the API redirects to {location or 'nowhere'}; redirects are not followed "
                                    "(they would carry the API key): set studio.api_url to where the API is",
                                    response.status_code, method, url, location=location)
            if not response.ok:
                body = http.read_body(response, http.ERROR_BODY_LIMIT, method, url, truncate=True)
                # A server (or a proxy) may echo the request back: the key must not reach a reason in the
                # ledger, which `status` prints without knowing the key.
                message = _api_message(response, body).replace(self._api_key, "[redacted]")
                raise api_error(response.status_code, message, method, url,
                                retry_after=parse_retry_after(response.headers.get("Retry-After")))
            body = http.read_body(response, http.API_BODY_LIMIT, method, url, too_large=AnswerTooLarge)
        self.telemetry.record_api_success()
        http.log_answer(method, url, response, body)
        if not body:
            return None
        try:
            return json.loads(body)
        except ValueError as exc:
            raise StudioError(f"answer is not JSON: {body[:200]!r}".replace(self._api_key, "[redacted]"),
                              response.status_code, method, url) from exc

    # ------------------------------------------------------------------ jobs

    def list_jobs(self) -> list[dict]:
        """Return every job of the account."""
        return self.request("GET", "jobs")

    def create_job(self, name: str, profile_id: int, **fields: Any) -> dict:
        """Create a job. Not repeated after a timeout: recover with `find_job_by_name`."""
        return self.request("POST", "jobs", payload={"name": name, "profile_id": profile_id, **fields})

    def get_job(self, job_id: int) -> dict:
        """Return the job with its photos and profile."""
        return self.request("GET", f"jobs/{job_id}")

    def find_job_by_name(self, name: str) -> dict | None:
        """Return the job called `name`, or None when there is none."""
        try:
            return self.request("GET", "jobs/find_by_name", params={"name": name})
        except NotFoundError:
            return None

    def update_job(self, job_id: int, **fields: Any) -> dict:
        """Change fields of a job (PATCH) and return it."""
        return self.request("PATCH", f"jobs/{job_id}", payload=fields)

    def queue_job(self, job_id: int, callback_url: str | None = None) -> dict:
        """Queue a job for processing. After a timeout, check the job's status before queueing again."""
        payload = {"callback_url": callback_url} if callback_url else {}
        return self.request("POST", f"jobs/{job_id}/queue", payload=payload)

    def jobs_in_front(self, job_id: int) -> int | None:
        """Return how many jobs the service will process before this one, or None if the answer holds no count."""
        return jobs_in_front_of(self.request("GET", f"jobs/{job_id}/jobs_in_front"))

    def read_job(self, job_id: int) -> StudioJob:
        """Return what Studio says of a job, read tolerantly (see `records`)."""
        return _parsed(job_state, self.get_job(job_id), "GET", f"jobs/{job_id}")

    def read_job_by_name(self, name: str) -> StudioJob | None:
        """Return what Studio says of the job called `name`, or None when there is none."""
        answer = self.find_job_by_name(name)
        return None if answer is None else _parsed(job_state, answer, "GET", "jobs/find_by_name")

    def read_photo(self, photo_id: int) -> PhotoResult:
        """Return a photo's result as `GET photos/{id}` tells it (the call every official client reads)."""
        return _parsed(photo_result, self.get_photo(photo_id), "GET", f"photos/{photo_id}")

    def cancel_job(self, job_id: int) -> dict:
        """Cancel a job."""
        return self.request("POST", f"jobs/{job_id}/cancel")

    def delete_job(self, job_id: int) -> dict:
        """Delete a job (and its photos)."""
        return self.request("DELETE", f"jobs/{job_id}")

    def job_photo_ids(self, job_id: int) -> list[int]:
        """Return the ids of the job's photos."""
        return [int(i) for i in self.request("GET", f"jobs/{job_id}/photo_ids")]

    # ------------------------------------------------------------------ profiles

    def list_profiles(self) -> list[dict]:
        """Return every profile of the account."""
        return self.request("GET", "profiles")

    def create_profile(self, name: str, **fields: Any) -> dict:
        """Create a profile (fields in snake_case, as the contract lists them)."""
        return self.request("POST", "profiles", payload={"name": name, **fields})

    def get_profile(self, profile_id: int) -> dict:
        """Return the profile with its background photos."""
        return self.request("GET", f"profiles/{profile_id}")

    def update_profile(self, profile_id: int, **fields: Any) -> dict:
        """Change fields of a profile and return it."""
        return self.request("PATCH", f"profiles/{profile_id}", payload=fields)

    # ------------------------------------------------------------------ photos

    def create_photo(self, name: str, job_id: int | None = None, profile_id: int | None = None) -> dict:
        """Create a photo record in a job (or a background on a profile). Recover by listing after a timeout."""
        if (job_id is None) == (profile_id is None):
            raise ValueError("give exactly one of job_id and profile_id")
        owner = {"job_id": job_id} if job_id is not None else {"profile_id": profile_id}
        return self.request("POST", "photos", payload={"name": name, **owner, "use_cache_upload": False})

    def upload_url(self, photo_id: int, content_md5: str) -> str:
        """Return a presigned PUT URL for exactly the bytes whose base64 MD5 is `content_md5`."""
        answer = self.request("GET", "photos/upload_url", params={
            "photo_id": photo_id, "content_md5": content_md5, "use_cache_upload": "false"})
        return answer["url"]

    def get_photo(self, photo_id: int) -> dict:
        """Return a photo (with fresh `originalUrl` and `retouchedUrl` when it has them)."""
        return self.request("GET", f"photos/{photo_id}")

    def list_job_photos(self, job_id: int | None = None, job_name: str | None = None) -> list[dict]:
        """Return the photos of a job, found by id or by name."""
        params = {"job_id": job_id} if job_id is not None else {"job_name": job_name}
        return self.request("GET", "photos/list_for_job", params=params)

    def delete_photo(self, photo_id: int) -> dict:
        """Delete a photo record."""
        return self.request("DELETE", f"photos/{photo_id}")

    # ------------------------------------------------------------------ object store

    def put_bytes(self, url: str, data: http.Body, content_md5: str, regular_job: bool = True) -> None:
        """PUT `data` (bytes, or a body streamed in chunks) to a presigned URL. Retried while the URL is fresh.

        Raises BadDigestError when the store says the bytes do not match,
        UrlExpiredError when the URL has expired or its signature is refused,
        and RefusedUrlError for a URL we never send to (see `transport`).
        """
        headers = {"Content-MD5": content_md5, "Content-Type": "application/octet-stream"}
        if regular_job:
            headers["X-Amz-Tagging"] = REGULAR_JOB_TAGGING

        def attempt() -> float:
            started = time.monotonic()
            with Guard(self.transfer_deadline, self.addresses):
                self._store_once("PUT", url, headers, data).close()
            return time.monotonic() - started
        seconds = self.retry.call(lambda: self._counted("store", attempt), "PUT", what="PUT photo bytes")
        self.telemetry.record_upload(len(data), seconds)

    def _store_once(self, method: str, url: str, headers: Mapping[str, str],
                    data: http.Body | None) -> requests.Response:
        """Send one object-store request (under the caller's Guard); return the 2xx answer, its body unread.

        A GET follows at most MAX_REDIRECTS redirects, each target checked
        like the first URL; a PUT follows none (its bytes go where Studio said).
        """
        for _ in range(MAX_REDIRECTS + 1):
            self.addresses.check_url(url)
            response = http.send(self.session, method, url, self.timeout, headers=headers, body=data)
            if method == "GET" and response.is_redirect:
                url = urljoin(url, response.headers["Location"])
                response.close()
                continue
            if response.ok:
                return response
            body = http.read_body(response, 4096, method, url, truncate=True)
            raise store_error(response.status_code, body, method, http.redact_url(url),
                              parse_retry_after(response.headers.get("Retry-After")))
        raise RefusedUrlError(f"more than {MAX_REDIRECTS} redirects", None, method, http.redact_url(url))

    def download(self, url: str, sink: BinaryIO, chunk_size: int = 1 << 16, max_bytes: int | None = None,
                 kind: str = "result") -> int:
        """Stream the object at a presigned GET URL into `sink`; return the number of bytes.

        `kind` (telemetry.DOWNLOAD_KINDS: "result" or "background") is what the
        download is counted as.

        At most `max_bytes` (default: `max_download_bytes`) are taken: a longer
        object raises DownloadTooLarge, declared or as it streams in. The whole
        download is retried from the start (the sink is rewound), so a
        half-written sink never survives a retry.
        """
        limit = self.max_download_bytes if max_bytes is None else max_bytes

        def attempt() -> tuple[int, float]:
            sink.seek(0)
            sink.truncate()
            started = time.monotonic()
            with Guard(self.transfer_deadline, self.addresses):
                response = self._store_once("GET", url, {}, None)
                with response:
                    size = http.copy_body(response, sink, limit, "GET", url, too_large=DownloadTooLarge,
                                          chunk_size=chunk_size)
            return size, time.monotonic() - started
        size, seconds = self.retry.call(lambda: self._counted("store", attempt), "GET", what="download")
        self.telemetry.record_download(kind, size, seconds)
        return size


def _parsed(parse: Callable[[Any], T], answer: Any, method: str, endpoint: str) -> T:
    """Return `parse(answer)`; an answer without the fields we need is Studio trouble, not our crash."""
    try:
        return parse(answer)
    except ValueError as exc:
        # Garbled or cut short, like a proxy's error page: trouble on the service's side, worth retrying.
        raise ServerError(f"unusable answer: {exc}", None, method, endpoint) from exc


def _api_message(response: requests.Response, body: bytes) -> str:
    """Return the server's error message (`{"message": ...}`), or a readable fallback."""
    try:
        answer = json.loads(body)
        if isinstance(answer, dict) and answer.get("message"):
            return str(answer["message"])
    except ValueError:
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:300] if text else response.reason or f"HTTP {response.status_code}"


_XML_FIELD = re.compile(r"<(Code|Message)>([^<]*)</\1>")


def store_error(status: int, body: bytes, method: str, url: str,
                retry_after: float | None = None) -> StoreError:
    """Given an S3-style XML error answer, return the typed store error."""
    fields = dict(_XML_FIELD.findall(body.decode("utf-8", "replace")))
    code = fields.get("Code", "")
    message = fields.get("Message") or code or f"HTTP {status}"
    if status == 400 and code == "BadDigest":
        return BadDigestError(message, status, code, method, url)
    if status == 403:
        return UrlExpiredError(message, status, code, method, url)
    error = StoreError(message, status, code, method, url)
    error.retry_after = retry_after
    return error


def parse_retry_after(value: str | None) -> float | None:
    """Given a Retry-After header (seconds or an HTTP date), return seconds to wait, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
