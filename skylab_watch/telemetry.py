"""What happened on the wire, counted in memory: transfers, Studio errors, retries, the last good call.

The ledger records the state of every photo and job (`metrics.LedgerCollector`
reads it at scrape time); events are not state, so these live here, in
prometheus_client metrics owned by one `Telemetry` object. That object is a
Collector: it is registered into the registry that serves `/metrics`, never
into the process-global default one (tests run several daemons in one
process, and each must count only its own traffic). Counters restart at 0
with the process; Prometheus treats that as a counter reset.

Recording happens on upload and delivery threads in the middle of the
pipeline, so it must never raise into it: every `record_*` method swallows
(and logs once) whatever goes wrong. It takes no lock of its own beyond the
one prometheus_client takes per value.

This module knows nothing of Studio or photos: kinds are given as names (see
`kind_name`), so the taxonomy stays that of `studio/errors.py` and the
outcome table.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Callable, Iterator

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger("skylab_watch")

PREFIX = "skylab_watch"

BYTE_BUCKETS = tuple(float(256 << 10 << n) for n in range(11))
"""256 KiB .. 256 MiB, doubling: a small JPEG to the largest result a download may be (client.MAX_DOWNLOAD_BYTES)."""

SECOND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""50 ms (a small file on a LAN) .. 5 min (a large result on a slow line; the deadline itself is 15 min)."""

DOWNLOAD_KINDS = ("result", "background")
"""What a download fetched: a retouched result, or a profile's background photo."""


def kind_name(kind: type) -> str:
    """Given an error class, return its label value: the class name in snake case without "Error".

    `RateLimitedError` -> `rate_limited`, `AnswerTooLarge` -> `answer_too_large`,
    `OSError` -> `os`. Derived from the class, so the labels are the names the
    code already has (studio/errors.py, the outcome table), not a second list.
    """
    return _snake_kind(kind.__name__)


@functools.lru_cache(maxsize=256)
def _snake_kind(name: str) -> str:
    """Return a class name as a kind label (cached: there are a few dozen classes, and errors come in bursts)."""
    if name.endswith("Error") and name != "Error":
        name = name[:-len("Error")]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower() or "error"


@functools.lru_cache(maxsize=256)
def label_value(words: str) -> str:
    """Return `words` as a label value: lower case, runs of anything but letters and digits made one "_"."""
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")  # cached: stages are a handful of phrases


def _never_raises(method: Callable[..., None]) -> Callable[..., None]:
    """Wrap a recording method so that no failure of it reaches the pipeline (logged once, at warning)."""
    @functools.wraps(method)
    def quiet(self: Telemetry, *args: object, **kwargs: object) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception:  # noqa: BLE001 - a metric must never cost a photo
            if not self._complained:
                self._complained = True
                log.warning("recording a metric failed; metrics may be incomplete", exc_info=True)
    return quiet


class Telemetry(Collector):
    """The in-memory metrics of one daemon (README "Metrics"); register it into the /metrics registry."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._complained = False
        self.upload_bytes = Histogram(f"{PREFIX}_upload_bytes", "Bytes of each photo uploaded to Studio's store.",
                                      buckets=BYTE_BUCKETS, registry=None)
        self.upload_seconds = Histogram(f"{PREFIX}_upload_duration_seconds", "Seconds each successful upload "
                                        "(one PUT of a photo's bytes) took.", buckets=SECOND_BUCKETS, registry=None)
        self.download_bytes = Histogram(f"{PREFIX}_download_bytes", "Bytes of each download from Studio's store, "
                                        "by kind (result, background).", ["kind"], buckets=BYTE_BUCKETS,
                                        registry=None)
        self.download_seconds = Histogram(f"{PREFIX}_download_duration_seconds", "Seconds each successful "
                                          "download took, by kind.", ["kind"], buckets=SECOND_BUCKETS, registry=None)
        self.studio_errors = Counter(f"{PREFIX}_studio_errors", "Failed exchanges with Studio (each attempt), by "
                                     "error kind and target (api, store).", ["kind", "target"], registry=None)
        self.retries = Counter(f"{PREFIX}_retries", "Photos or jobs deferred after a passing fault, by stage, "
                               "outcome and the outcome table's kind.", ["item", "stage", "outcome", "kind"],
                               registry=None)
        self.last_success = Gauge(f"{PREFIX}_studio_last_success_timestamp_seconds", "Unix time of the last 2xx "
                                  "answer from the Studio API (0: none since the daemon started).", registry=None)
        for kind in DOWNLOAD_KINDS:  # present from the start, so rate() sees the first download
            self.download_bytes.labels(kind)
            self.download_seconds.labels(kind)

    def collect(self) -> Iterator[Metric]:
        for metric in (self.upload_bytes, self.upload_seconds, self.download_bytes, self.download_seconds,
                       self.studio_errors, self.retries, self.last_success):
            yield from metric.collect()

    @_never_raises
    def record_upload(self, size: int, seconds: float) -> None:
        """One photo's bytes were stored: `size` bytes in `seconds` (the attempt that succeeded)."""
        self.upload_bytes.observe(size)
        self.upload_seconds.observe(seconds)

    @_never_raises
    def record_download(self, kind: str, size: int, seconds: float) -> None:
        """One download of `kind` (DOWNLOAD_KINDS) completed: `size` bytes in `seconds`."""
        self.download_bytes.labels(kind).observe(size)
        self.download_seconds.labels(kind).observe(seconds)

    @_never_raises
    def record_studio_error(self, error: BaseException, target: str) -> None:
        """One exchange with Studio's `target` ("api" or "store") failed with `error`."""
        self.studio_errors.labels(kind_name(type(error)), target).inc()

    @_never_raises
    def record_api_success(self) -> None:
        """The API answered 2xx now."""
        self.last_success.set(self._clock())

    @_never_raises
    def record_retry(self, item: str, stage: str, outcome: str, kind: type) -> None:
        """An `item` ("photo", "job") was deferred at `stage` with `outcome`, by the table row for `kind`.

        Stage and outcome are the words the pipeline uses ("looking for the result", "back off Studio"),
        turned into label values (`looking_for_the_result`, `back_off_studio`).
        """
        self.retries.labels(item, label_value(stage), label_value(outcome), kind_name(kind)).inc()
