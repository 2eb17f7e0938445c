"""/metrics: the ledger's numbers in the Prometheus text format, read at scrape time.

(Events, which are not ledger state, are counted by `telemetry.Telemetry` and
registered next to the ledger collector by `metrics_registry`.)

A custom Collector asks the ledger on every scrape instead of keeping
counters of its own: the ledger is already the record of every photo and job,
so the page can never drift from `skylab-watch status`, and a restart loses
nothing. Rendering (HELP/TYPE lines, label escaping) is prometheus_client's.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from skylab_watch.ledger import Ledger
from skylab_watch.ledger.states import JOB_OPEN_STATES

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the Prometheus text exposition format."""

PREFIX = "skylab_watch"


class LedgerCollector(Collector):
    """Yield the gauges of README "Metrics" from the ledger; `loop_age` gives the work loop's age in seconds."""

    def __init__(self, ledger: Ledger, loop_age: Callable[[], float] | None = None) -> None:
        self._ledger = ledger
        self._loop_age = loop_age

    def collect(self) -> Iterator[Metric]:
        yield self._photos()
        yield self._jobs()
        yield from self._conditions()
        yield self._jobs_in_front()
        if self._loop_age is not None:
            age = GaugeMetricFamily(f"{PREFIX}_work_loop_age_seconds",
                                    "Seconds since the daemon's work loop last came round.")
            age.add_metric([], self._loop_age())
            yield age

    def _photos(self) -> Metric:
        photos = GaugeMetricFamily(f"{PREFIX}_photos", "Photos (every version of every file) by watch and "
                                                       "ledger state.", labels=["watch", "state"])
        for watch, states in sorted(self._ledger.state_counts().items()):
            for state, count in sorted(states.items()):
                photos.add_metric([watch, state], count)
        return photos

    def _jobs(self) -> Metric:
        jobs = GaugeMetricFamily(f"{PREFIX}_jobs", "Studio jobs by ledger state.", labels=["state"])
        for state, count in sorted(self._ledger.count_jobs_by_state().items()):
            jobs.add_metric([state], count)
        return jobs

    def _conditions(self) -> Iterator[Metric]:
        now = time.time()
        notices = GaugeMetricFamily(f"{PREFIX}_notice_active_seconds", "Active notices (out of credits, disk "
                                    "full...) by key: seconds since raised.", labels=["key"])
        for key, (_, since) in sorted(self._ledger.notices().items()):
            notices.add_metric([key], max(0.0, now - since))
        yield notices
        paused = GaugeMetricFamily(f"{PREFIX}_watch_paused_seconds", "Watches paused by hand: seconds since "
                                   "paused.", labels=["watch"])
        for watch, (_, since) in sorted(self._ledger.paused_by_hand().items()):
            paused.add_metric([watch], max(0.0, now - since))
        yield paused

    def _jobs_in_front(self) -> Metric:
        front = GaugeMetricFamily(f"{PREFIX}_jobs_in_front", "Open jobs at Studio: how many of other customers' "
                                  "jobs Studio said are in front of each.", labels=["watch", "job"])
        for job in self._ledger.jobs_in_state(*JOB_OPEN_STATES):
            if job.jobs_in_front is not None:
                front.add_metric([job.watch, job.name], job.jobs_in_front)
        return front


def metrics_registry(ledger: Ledger, loop_age: Callable[[], float] | None = None,
                     extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """Return a registry of its own (not the process-global one) holding the ledger collector and `extra`
    collectors (the daemon's `telemetry.Telemetry`: what happened on the wire, counted in memory)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(ledger, loop_age))
    for collector in extra:
        registry.register(collector)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Return the registry's metrics in the text format."""
    return generate_latest(registry)
