"""Completion: learn when queued jobs finish and hand their photos to delivery.

Polling is the safety net and the default: each queued job is looked at every
`polling.interval_seconds` (jittered), less often while Studio is
unreachable. A verified callback only makes a job due at once. A job is
finished when its status is terminal or every photo has a `retouchedUrl`; a
photo is delivered as soon as its own result is there.
"""

from __future__ import annotations

import io
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyvips

from skylab_watch import imaging
from skylab_watch.ledger import Job, JobState, PhotoState
from skylab_watch.ledger.states import AT_STUDIO_STATES
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.deliver import JobLook, deliver_guarded, finish_delivered
from skylab_watch.pipeline.failures import fail_photo, job_step_failed, photo_step_failed
from skylab_watch.pipeline.outcomes import STOP_THE_PASS, UnsupportedResultUrl, UnusableResult
from skylab_watch.studio import NotFoundError, StudioError
from skylab_watch.studio.client import MAX_BACKGROUND_BYTES
from skylab_watch.studio.records import FAILED_STATUSES, StudioJob, PhotoResult, profile_backgrounds
from skylab_watch.workers import WorkerPool

log = logging.getLogger("skylab_watch")

# Words seen for jobs on their way (only `completed` is attested); others are logged once, not assumed.
KNOWN_STATUSES = frozenset({"pending", "queued", "processing"})
# A job whose answer carries no results is asked photo by photo at most this often before it is finished.
PHOTO_LOOK_SECONDS = 30.0
# How many photos are read from Studio at once when a job's answer carries no results.
PHOTO_READS_AT_ONCE = 8


def describe_duration(seconds: float) -> str:
    """Return a duration in the unit a person would use: `45 s`, `20 min`, `24 h`."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


class Deliveries:
    """Polls queued jobs and runs photo deliveries on a pool of `downloads.concurrency` threads."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._pool: WorkerPool[int] = WorkerPool(ctx.config.download_concurrency, "deliver")
        self._due: dict[int, float] = {}
        self._looks: dict[int, JobLook] = {}
        self._in_front: dict[int, int] = {}
        self._unknown_logged: set[str] = set()
        self._photo_looks: dict[int, float] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    def poke(self, studio_job_id: int | None = None) -> None:
        """Make a job (or every job) due for a look now: a callback said it finished."""
        with self._lock:
            for job in self.ctx.ledger.jobs_in_state(JobState.QUEUED):
                if studio_job_id is None or job.studio_id == studio_job_id:
                    self._due[job.id] = 0.0

    def busy(self) -> bool:
        """Return True while a delivery is running (or finished and not yet looked at)."""
        return self._pool.busy()

    def in_flight(self) -> int:
        """Return how many deliveries are submitted and not yet reaped."""
        return len(self._pool)

    def close(self) -> list[int]:
        """Start no more deliveries (those not started yet are redone on the next start); return their ids."""
        return self._pool.close()

    def shutdown(self, grace_seconds: float) -> list[int]:
        """Wait up to `grace_seconds` for running deliveries; return the photo ids abandoned.

        An abandoned delivery is recorded as `delivering` (or `delivered`):
        the next start delivers it again, reusing outputs already written.
        """
        return self._pool.shutdown(grace_seconds)

    def step(self, wakeup: threading.Event | None = None) -> None:
        """Reap finished deliveries, then look at every queued job that is due."""
        self._reap(wakeup)
        now = time.monotonic()
        for job in self.ctx.ledger.jobs_in_state(JobState.QUEUED):
            if self._due.get(job.id, 0.0) <= now and self.ctx.has_watch(job.watch):
                self._due[job.id] = now + self._interval()
                try:
                    self.look_at_job(job)
                except Exception as exc:  # noqa: BLE001 - the outcome table decides
                    if job_step_failed(self.ctx, job, exc, "looking at") in STOP_THE_PASS:
                        return

    def _interval(self) -> float:
        base = self.ctx.config.poll_interval_seconds
        return base * self._rng.uniform(0.8, 1.2)

    def look_at_job(self, job: Job) -> None:
        """Ask Studio about one queued job; schedule deliveries, fail what will never come."""
        state = self.ctx.studio.read_job(job.require_studio_id())
        self.ctx.health.succeeded()
        self._note_status(job, state)
        waiting = self.ctx.ledger.photos_in_state(*AT_STUDIO_STATES, job_id=job.id)
        results = self._results(job, state, [p for p in waiting if p.state != PhotoState.DELIVERED])
        for photo in waiting:
            if photo.state == PhotoState.DELIVERED:
                self._schedule(job, photo, None, state)
            elif self.ctx.deferrals.due(("photo", photo.id)):
                self._decide(job, photo, results.get(photo.studio_id), state)
        self._close_job_if_done(job, state.status)

    def _decide(self, job: Job, photo, result: PhotoResult | None, state: StudioJob) -> None:
        """Deliver a photo whose result is there; fail one that will never get a usable one."""
        if result is not None and result.unusable_url:
            photo_step_failed(self.ctx, photo, UnsupportedResultUrl(result.unusable_url[:80]), "looking for the result",
                              job)
        elif result is not None and result.result_url:
            self._schedule(job, photo, result.result_url, state)
        elif state.failed:
            fail_photo(self.ctx, photo, f"Studio reports job {job.name} {state.status}", job)
        elif self._overdue(job):
            limit = self.ctx.watch(job.watch).delivery_timeout_seconds
            fail_photo(self.ctx, photo, f"Studio did not deliver a result within {describe_duration(limit)}", job)

    def _results(self, job: Job, state: StudioJob, photos: list) -> dict[int | None, PhotoResult]:
        """Return the results of the job's waiting photos: from the job's answer where it carries them,
        else from `GET photos/{id}` (the call every official client reads a result from).

        Photos are asked for one by one once the job is finished, and now and
        then before (status words other than `completed` are not assumed).
        """
        embedded = state.photos or {}
        results: dict[int | None, PhotoResult] = {k: v for k, v in embedded.items()
                                                  if v.result_url or v.unusable_url}
        missing = [p for p in photos if p.studio_id not in results and p.studio_id is not None
                   and self.ctx.has_watch(p.watch)]
        if not missing or not (state.terminal or self._photo_look_due(job)):
            return results
        for photo, answer in zip(missing, self._read_photos(missing), strict=True):
            if isinstance(answer, NotFoundError):
                photo_step_failed(self.ctx, photo, answer, "looking for the result", job)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                results[photo.studio_id] = answer
        return results

    def _read_photos(self, photos: list) -> list[PhotoResult | BaseException]:
        """Read the photos' results from Studio, a few calls at a time: one call after another, a job of
        100 photos held the work loop for 100 round trips (5 s at 50 ms, far more on a slow link)."""
        def read(photo) -> PhotoResult | BaseException:
            try:
                return self.ctx.studio.read_photo(photo.require_studio_id())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller, which decides
                return exc
        if len(photos) == 1:
            return [read(photos[0])]
        with ThreadPoolExecutor(max_workers=min(PHOTO_READS_AT_ONCE, len(photos)),
                                thread_name_prefix="photo-look") as pool:
            return list(pool.map(read, photos))

    def _photo_look_due(self, job: Job) -> bool:
        """Return True when a job not yet finished is due for a look photo by photo; never at once after
        it was queued (no result can be ready then), then every PHOTO_LOOK_SECONDS."""
        now = time.monotonic()
        interval = max(PHOTO_LOOK_SECONDS, 4 * self.ctx.config.poll_interval_seconds)
        due = self._photo_looks.setdefault(job.id, now + interval)
        if due > now:
            return False
        self._photo_looks[job.id] = now + interval
        return True

    def _note_status(self, job: Job, state: StudioJob) -> None:
        status = state.status
        if not state.terminal and status not in KNOWN_STATUSES and status not in self._unknown_logged:
            self._unknown_logged.add(status)
            log.warning("Studio reports a job status we do not know, %r (job %s); treating it as not finished",
                        status, job.name)
        if status != job.studio_status:
            self.ctx.ledger.update_job(job.id, studio_status=status)
        if not state.terminal and not state.has_results:
            self._log_queue_length(job)

    def _log_queue_length(self, job: Job) -> None:
        try:
            ahead = self.ctx.studio.jobs_in_front(job.require_studio_id())
        except StudioError:
            return
        if ahead is None or self._in_front.get(job.id) == ahead:
            return
        self._in_front[job.id] = ahead
        self.ctx.ledger.update_job(job.id, jobs_in_front=ahead)
        if ahead:
            log.info("%s: job %s waits behind %d other job(s) at Studio", job.watch, job.name, ahead)
        else:
            log.info("%s: job %s is next in line at Studio", job.watch, job.name)

    def _overdue(self, job: Job) -> bool:
        limit = self.ctx.watch(job.watch).delivery_timeout_seconds if self.ctx.has_watch(job.watch) else None
        return limit is not None and job.queued_at is not None and time.time() - job.queued_at > limit

    def _schedule(self, job: Job, photo, url: str | None, state: StudioJob) -> None:
        """Deliver a photo (outputs may be written while its watch is paused: they need no input)."""
        if self._pool.in_flight(photo.id) or not self.ctx.has_watch(photo.watch):
            return
        if url is None:  # delivered: only the original is left to handle, once its folder is back
            if photo.watch not in self.ctx.paused_watches:
                self._pool.submit(photo.id, finish_delivered, self.ctx, photo)
            return
        self._pool.submit(photo.id, deliver_guarded, self.ctx, photo, url, self._look_for(job, state))

    def _look_for(self, job: Job, state: StudioJob) -> JobLook:
        """Return the job's profile and its background photos, fetched once per job."""
        if job.id not in self._looks:
            profile = dict(state.profile) if state.profile else self.ctx.studio.get_profile(job.require_profile_id())
            if "photos" not in profile:
                profile = self.ctx.studio.get_profile(int(profile.get("id") or job.require_profile_id()))
            backgrounds = profile_backgrounds(profile)
            urls = [url for _, url in backgrounds]
            self._looks[job.id] = JobLook(
                profile=profile,
                background_stems=[Path(name or f"background {i + 1}").stem for i, (name, _) in enumerate(backgrounds)],
                fetch_backgrounds=lambda: [self._fetch_background(url) for url in urls])
        return self._looks[job.id]

    def _fetch_background(self, url: str) -> pyvips.Image:
        """Download and decode one background photo, bounded in bytes (Studio's input limit) and in
        pixels (checked from its header before the decode); one beyond either is an unusable result."""
        buffer = io.BytesIO()
        self.ctx.studio.download(url, buffer, max_bytes=MAX_BACKGROUND_BYTES, kind="background")
        try:
            return imaging.load_background(buffer.getvalue())
        except imaging.TooManyPixels as exc:
            raise UnusableResult(str(exc)) from exc

    def _reap(self, wakeup: threading.Event | None) -> None:
        for photo_id, outcome in self._pool.reap():
            if isinstance(outcome, BaseException):  # deliver_guarded settles every error; this is a bug
                log.error("delivery of %s crashed; it will be tried again", self._describe(photo_id),
                          exc_info=outcome)
            self._close_after(photo_id)
            if wakeup is not None:
                wakeup.set()

    def _describe(self, photo_id: int) -> str:
        """Name a photo in a log line by its watch and path (`packshots: s1/IMG_1.jpg`)."""
        photo = self.ctx.ledger.get_photo(photo_id)
        return f"{photo.watch}: {photo.rel_path}" if photo else f"photo row {photo_id}"

    def _close_after(self, photo_id: int) -> None:
        """Once a photo's delivery ends, finish its job if that was the last one (no need to wait a poll)."""
        photo = self.ctx.ledger.get_photo(photo_id)
        job = self.ctx.ledger.get_job(photo.job_id) if photo and photo.job_id else None
        if job is not None and job.state == JobState.QUEUED:
            self._close_job_if_done(job, job.studio_status or "")

    def _close_job_if_done(self, job: Job, status: str) -> None:
        if self.ctx.ledger.photos_in_state(*AT_STUDIO_STATES, job_id=job.id):
            return
        final = JobState.FAILED if status in FAILED_STATUSES else JobState.DELIVERED
        self.ctx.ledger.update_job(job.id, state=final, finished_at=time.time(),
                                   reason=f"Studio status {status}" if final is JobState.FAILED else None)
        self._looks.pop(job.id, None)
        self._due.pop(job.id, None)
        log.info("%s: job %s is finished (%s)", job.watch, job.name, status or "all photos delivered")
