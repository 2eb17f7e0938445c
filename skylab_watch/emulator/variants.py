"""Personalities: switches for each plausible way the real Studio may differ.

The emulator's default answers are the documented contract
(`studio-api.md`). Nobody here can reach the real service, and the official
clients leave some answers open, so each variant below bends one answer the
way the clients suggest the real service might behave. A daemon that copes
with all of them relies only on what is attested.

    slim-job-photos            photos embedded in job answers (and job lists)
                               carry no retouchedUrl / originalUrl
    job-without-photos         GET jobs/{id} (every job answer) has no "photos" key
    placeholder-retouched-url  before a photo is ready its retouchedUrl is a
                               non-URL word ("pending", "processing"), not null
    original-url-at-create     originalUrl is set from the create answer on,
                               before any bytes (it answers 404 until the PUT)
    other-status-words         job statuses "new", "waiting", "in_progress",
                               "completed", "error"; queueing a job that is
                               already queued/processing/completed: 422
                               "job already queued"
    credits-as-422             out of credits is 422 "Insufficient credits to
                               process this job"
    credits-as-403             out of credits is 403 "Payment required: your
                               credit balance is empty"
    webp-results               extract profiles deliver WebP (RGBA) results
    jobs-in-front-object       jobs_in_front answers {"data": {"jobs_in_front": N}}
    jobs-in-front-string       jobs_in_front answers a JSON string, e.g. "2"

Each variant is a row of small functions, one per hook; `Personality`
folds the active rows over a default value. Hooks and their values:
`photo` (a rendered photo dict and its PhotoFacts), `job` (a rendered job
dict), `status` (a job status word), `credits` ((status, message) of the
out-of-credits refusal), `queue_refused` (the 422 message for queueing a job
that is not pending), `extract_type` (file type of a cut-out) and
`jobs_in_front` (the answer's JSON payload for a count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

STATUS_WORDS = {"pending": "new", "queued": "waiting", "processing": "in_progress", "failed": "error"}
URL_KEYS = ("retouchedUrl", "originalUrl")


@dataclass(frozen=True)
class PhotoFacts:
    """What a photo hook may need beyond the rendered dict."""

    embedded: bool                       # rendered inside a job answer
    job_photo: bool                      # a job's photo, not a profile background
    queued: bool                         # its job has been queued
    sign_original: Callable[[], str]     # a fresh presigned URL of its original


def _slim(doc: dict[str, Any], facts: PhotoFacts) -> dict[str, Any]:
    if facts.embedded:
        return {k: v for k, v in doc.items() if k not in URL_KEYS}
    return doc


def _placeholder(doc: dict[str, Any], facts: PhotoFacts) -> dict[str, Any]:
    if facts.job_photo and doc.get("retouchedUrl", "") is None:
        return dict(doc, retouchedUrl="processing" if facts.queued else "pending")
    return doc


def _original_at_create(doc: dict[str, Any], facts: PhotoFacts) -> dict[str, Any]:
    if facts.job_photo and doc.get("originalUrl", "") is None:
        return dict(doc, originalUrl=facts.sign_original())
    return doc


def _without_photos(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "photos"}


def _other_words(doc: dict[str, Any]) -> dict[str, Any]:
    return dict(doc, status=STATUS_WORDS.get(doc["status"], doc["status"]))


@dataclass(frozen=True)
class Variant:
    """One personality: its name, a line for --help, and its hooks."""

    name: str
    summary: str
    hooks: dict[str, Callable[..., Any]]


TABLE: tuple[Variant, ...] = (
    Variant("slim-job-photos", "photos embedded in job answers carry no retouchedUrl/originalUrl",
            {"photo": _slim}),
    Variant("job-without-photos", "job answers have no 'photos' key at all", {"job": _without_photos}),
    Variant("placeholder-retouched-url", "retouchedUrl is 'pending'/'processing' (not null) until ready",
            {"photo": _placeholder}),
    Variant("original-url-at-create", "originalUrl is set from the create answer on, before any bytes",
            {"photo": _original_at_create}),
    Variant("other-status-words", "job statuses new/waiting/in_progress/completed/error; queueing again: 422",
            {"job": _other_words, "queue_refused": lambda message: "job already queued"}),
    Variant("credits-as-422", "out of credits is 422 'Insufficient credits to process this job'",
            {"credits": lambda _: (422, "Insufficient credits to process this job")}),
    Variant("credits-as-403", "out of credits is 403 'Payment required: your credit balance is empty'",
            {"credits": lambda _: (403, "Payment required: your credit balance is empty")}),
    Variant("webp-results", "extract profiles deliver WebP (RGBA) results", {"extract_type": lambda _: "webp"}),
    Variant("jobs-in-front-object", 'jobs_in_front answers {"data": {"jobs_in_front": N}}',
            {"jobs_in_front": lambda payload: {"data": {"jobs_in_front": payload["jobsInFront"]}}}),
    Variant("jobs-in-front-string", 'jobs_in_front answers a JSON string such as "2"',
            {"jobs_in_front": lambda payload: str(payload["jobsInFront"])}),
)
BY_NAME = {v.name: v for v in TABLE}
VARIANTS: tuple[str, ...] = tuple(BY_NAME)


def unknown_variants(names: object) -> list[str]:
    """Return the problems with a list of variant names (empty if it is valid)."""
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        return ["must be a list of variant names"]
    return [f"{n!r} is not a variant (known: {', '.join(VARIANTS)})" for n in names if n not in BY_NAME]


class Personality:
    """The active variants, applied in table order (a later row wins on the same hook)."""

    def __init__(self, names: tuple[str, ...] | list[str] = ()) -> None:
        active = set(names)
        self.names = tuple(v.name for v in TABLE if v.name in active)
        self._rows = [BY_NAME[n] for n in self.names]

    def apply(self, hook: str, value: Any, *facts: Any) -> Any:
        """Return `value` after every active variant's `hook` has transformed it."""
        for row in self._rows:
            function = row.hooks.get(hook)
            if function is not None:
                value = function(value, *facts)
        return value
