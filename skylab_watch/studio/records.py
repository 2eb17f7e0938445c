"""Small typed records read tolerantly out of Studio's answers.

This is the one place that knows Studio's field names (`retouchedUrl`,
`jobsInFront`, `status`, ...). It relies on no more than the official clients
(`skylab-tech/studio_client_*`) rely on, so that the pipeline keeps working
when the real service answers in a shape our emulator does not:

- a photo's result is an http(s) URL or nothing: the clients refuse any other
  value ("ensure the job is complete"), so a placeholder means "not ready";
  a URL of another scheme (file://, ftp://) is kept apart, as a permanent fault;
- of the job status words only `completed` is attested; the failed/cancelled
  family is recognised when it appears, and any other word means "not finished";
- photos embedded in a job's answer may be slim or missing: `photos` is None
  when the answer carried none, and a photo without a result there must be
  asked for with `GET photos/{id}`;
- `jobs_in_front` may come as a number, a numeric string or an object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

COMPLETED_STATUSES = frozenset({"completed", "complete", "done", "finished"})
FAILED_STATUSES = frozenset({"failed", "error", "errored", "cancelled", "canceled"})

_URL_WITH_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_MAX_NESTING = 3


@dataclass(frozen=True)
class PhotoResult:
    """What a Studio answer says about one photo's result.

    result_url: an http(s) URL of the retouched file, or None while not ready.
    unusable_url: a URL with a scheme we never fetch (file://, ftp://, ...);
    waiting will not change it, so the photo fails rather than waits.
    """

    id: int
    name: str | None
    result_url: str | None
    unusable_url: str | None = None


@dataclass(frozen=True)
class StudioJob:
    """What a Studio answer says about one job.

    status: the status word, lower-cased ("" when absent). kind: the job's
    `type` ("regular" for jobs made through the API), which decides whether
    uploads carry `X-Amz-Tagging`. photos: {photo id: result} of the photos the
    answer embedded, or None when it embedded none. profile: the embedded
    profile object, if any.
    """

    id: int
    name: str | None
    status: str
    kind: str | None
    photos: dict[int, PhotoResult] | None
    profile: Mapping[str, Any] | None

    @property
    def completed(self) -> bool:
        """True when Studio says the job is done (the one attested status word)."""
        return self.status in COMPLETED_STATUSES

    @property
    def failed(self) -> bool:
        """True when Studio says the job failed or was cancelled."""
        return self.status in FAILED_STATUSES

    @property
    def terminal(self) -> bool:
        """True when Studio will not work on the job any more."""
        return self.completed or self.failed

    @property
    def has_results(self) -> bool:
        """True when any photo embedded in the answer already carries a usable result."""
        return any(p.result_url for p in (self.photos or {}).values())

    @property
    def regular(self) -> bool:
        """True for a `regular` job: its uploads carry the S3 tagging the official clients send."""
        return self.kind == "regular"


def result_url_of(value: Any) -> tuple[str | None, str | None]:
    """Given a `retouchedUrl` value, return (usable http(s) URL, unusable URL of another scheme)."""
    if not isinstance(value, str):
        return None, None
    text = value.strip()
    match = _URL_WITH_SCHEME.match(text)
    if match is None:
        return None, None  # a placeholder such as "pending": not ready yet
    if match.group(1).lower() in ("http", "https"):
        return text, None
    return None, text


def photo_result(answer: Any) -> PhotoResult:
    """Given a photo object from Studio, return its result record; raise ValueError without an id."""
    if not isinstance(answer, Mapping):
        raise ValueError(f"a photo answer is not an object: {str(answer)[:100]!r}")
    url, unusable = result_url_of(answer.get("retouchedUrl", answer.get("retouched_url")))
    return PhotoResult(id=_int_id(answer.get("id")), name=_text(answer.get("name")),
                       result_url=url, unusable_url=unusable)


def job_state(answer: Any) -> StudioJob:
    """Given a job object from Studio, return its state record; raise ValueError without an id."""
    if not isinstance(answer, Mapping):
        raise ValueError(f"a job answer is not an object: {str(answer)[:100]!r}")
    embedded = answer.get("photos")
    photos: dict[int, PhotoResult] | None = None
    if isinstance(embedded, list):
        photos = {}
        for item in embedded:
            try:
                record = photo_result(item)
            except ValueError:
                continue  # a slim entry without an id tells us nothing
            photos[record.id] = record
    profile = answer.get("profile")
    return StudioJob(id=_int_id(answer.get("id")), name=_text(answer.get("name")),
                    status=str(answer.get("status") or "").strip().lower(),
                    kind=_text(answer.get("type")), photos=photos,
                    profile=profile if isinstance(profile, Mapping) else None)


def jobs_in_front_of(answer: Any) -> int | None:
    """Given a `jobs_in_front` answer of any shape, return the count, or None if it holds none.

    Documented as `{"jobsInFront": n}`; a bare number, a numeric string, or
    the count nested under another key are taken as well.
    """
    return _find_count(answer, 0)


def _find_count(value: Any, depth: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return max(0, int(value))
    if isinstance(value, str):
        text = value.strip()
        return max(0, int(float(text))) if re.fullmatch(r"\d+(\.\d+)?", text) else None
    if isinstance(value, Mapping) and depth < _MAX_NESTING:
        preferred = [k for k in ("jobsInFront", "jobs_in_front", "count", "value") if k in value]
        for key in [*preferred, *[k for k in value if k not in preferred]]:
            found = _find_count(value[key], depth + 1)
            if found is not None:
                return found
    return None


def _int_id(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"no usable id in Studio's answer ({value!r})") from None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def profile_backgrounds(profile: Mapping[str, Any] | None) -> list[tuple[str | None, str]]:
    """Given a profile object, return (name, http(s) URL) of each background photo uploaded to it.

    Backgrounds are the profile's photos that belong to no job (`jobId` null).
    """
    found = []
    for item in (profile or {}).get("photos") or []:
        if isinstance(item, Mapping) and item.get("jobId") is None:
            url, _ = result_url_of(item.get("originalUrl"))
            if url:
                found.append((_text(item.get("name")), url))
    return found
