"""Stalled deliveries: a job at Studio far longer than usual.

Usual is the median time from queueing to delivery of the last RECENT_JOBS delivered jobs;
a job is stalled after `factor` times that, and never before `floor` seconds (with fewer
than MIN_HISTORY jobs to go by, the floor alone decides). Each job is told once per run.
"""

from __future__ import annotations

import statistics
import time

from skylab_watch.ledger import Job, JobState, Ledger

EVENT = "stalled"
RECENT_JOBS = 20
MIN_HISTORY = 3
CHECK_SECONDS = 10.0


def stall_threshold(durations: list[float], factor: float, floor: float) -> tuple[float, float | None]:
    """Given recent jobs' durations, return (seconds after which a job is stalled, the usual duration or None)."""
    if len(durations) < MIN_HISTORY:
        return floor, None
    usual = statistics.median(durations)
    return max(floor, factor * usual), usual


class StallWatch:
    """Looks at the jobs at Studio every `check_seconds` and names those past the threshold."""

    def __init__(self, ledger: Ledger, factor: float, floor: float) -> None:
        self.ledger = ledger
        self.factor = factor
        self.floor = floor
        # Often enough to tell a stall within a fraction of the floor, never more than a query per CHECK_SECONDS.
        self.check_seconds = min(CHECK_SECONDS, floor / 4)
        self._next = 0.0
        self._told: set[int] = set()

    def stalled(self, now: float | None = None) -> list[tuple[str, str]]:
        """Return (title, body) for each job newly past the threshold; [] until the next check is due."""
        if time.monotonic() < self._next:
            return []
        self._next = time.monotonic() + self.check_seconds
        now = now if now is not None else time.time()
        limit, usual = stall_threshold(self.ledger.finished_job_durations(RECENT_JOBS), self.factor, self.floor)
        found = []
        for job in self.ledger.jobs_in_state(JobState.QUEUED):
            if job.queued_at is not None and now - job.queued_at > limit and job.id not in self._told:
                self._told.add(job.id)
                found.append(self._message(job, now - job.queued_at, usual))
        return found

    def _message(self, job: Job, age: float, usual: float | None) -> tuple[str, str]:
        photos = self.ledger.count_job_photos(job.id)
        usual_text = (f"usual is {_span(usual)} (median of recent jobs)" if usual is not None
                      else f"more than the {_span(self.floor)} allowed")
        front = f", {job.jobs_in_front} job(s) in front" if job.jobs_in_front else ""
        body = (f"{job.watch}: job {job.name} (Studio id {job.studio_id}, {photos} photo(s)) has been at Studio "
                f"for {_span(age)}; {usual_text}. Studio status: {job.studio_status or 'unknown'}{front}.")
        return f"deliveries stalled: job {job.name}", body


def _span(seconds: float) -> str:
    """Say a duration the way a person would: 45 s, 12 min, 3 h 5 min."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
