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
from pathlib import Path

import pyvips

from skylab_watch.ledger import Job
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.deliver import JobLook, deliver_photo, finish_original
from skylab_watch.pipeline.jobs import job_vanished
from skylab_watch.studio import NotFoundError, StudioError
from skylab_watch.workers import WorkerPool

log = logging.getLogger("skylab_watch")

# Photo states in which a photo is still on its way.
ACTIVE_PHOTO_STATES = ("ready", "batched", "uploading", "uploaded", "queued", "delivering", "delivered")
KNOWN_STATUSES = frozenset({"pending", "queued", "processing", "completed", "failed", "cancelled", "canceled"})
FAILED_STATUSES = frozenset({"failed", "cancelled", "canceled"})


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
        self._bad_results: dict[int, int] = {}
        self._lock = threading.Lock()
        self._rng = random.Random()

    def poke(self, studio_job_id: int | None = None) -> None:
        """Make a job (or every job) due for a look now: a callback said it finished."""
        with self._lock:
            for job in self.ctx.ledger.jobs_in_state("queued"):
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
        for job in self.ctx.ledger.jobs_in_state("queued"):
            if self._due.get(job.id, 0.0) <= now:
                self._due[job.id] = now + self._interval()
                try:
                    self.look_at_job(job)
                except NotFoundError:
                    job_vanished(self.ctx, job)

    def _interval(self) -> float:
        base = self.ctx.config.poll_interval_seconds
        return base * self._rng.uniform(0.8, 1.2)

    def look_at_job(self, job: Job) -> None:
        """Ask Studio about one queued job; schedule deliveries, fail what will never come."""
        remote = self.ctx.studio.get_job(int(job.studio_id))
        status = str(remote.get("status") or "").lower()
        self._note_status(job, status)
        by_id = {int(p["id"]): p for p in remote.get("photos") or []}
        waiting = self.ctx.ledger.photos_in_state("queued", "delivering", "delivered", job_id=job.id)
        for photo in waiting:
            if photo.state == "delivered":
                self._schedule(job, photo, None, remote)
                continue
            url = (by_id.get(photo.studio_id) or {}).get("retouchedUrl")
            if url:
                self._schedule(job, photo, url, remote)
            elif status in FAILED_STATUSES:
                self._fail(photo, f"Studio reports job {job.name} {status}")
            elif self._overdue(job):
                limit = self.ctx.watch(job.watch).delivery_timeout_seconds
                self._fail(photo, f"Studio did not deliver a result within {describe_duration(limit)}")
        self._close_job_if_done(job, status)

    def _note_status(self, job: Job, status: str) -> None:
        if status not in KNOWN_STATUSES and status not in self._unknown_logged:
            self._unknown_logged.add(status)
            log.warning("Studio reports an unknown job status %r (job %s); treating it as not finished",
                        status, job.name)
        if status != job.studio_status:
            self.ctx.ledger.update_job(job.id, studio_status=status)
        if status in ("queued", "pending"):
            self._log_queue_length(job)

    def _log_queue_length(self, job: Job) -> None:
        try:
            ahead = self.ctx.studio.jobs_in_front(int(job.studio_id))
        except StudioError:
            return
        if self._in_front.get(job.id) != ahead:
            self._in_front[job.id] = ahead
            self.ctx.ledger.update_job(job.id, jobs_in_front=ahead)
            if ahead:
                log.info("%s: job %s waits behind %d other job(s) at Studio", job.watch, job.name, ahead)
            else:
                log.info("%s: job %s is next in line at Studio", job.watch, job.name)

    def _overdue(self, job: Job) -> bool:
        limit = self.ctx.watch(job.watch).delivery_timeout_seconds if self.ctx.has_watch(job.watch) else None
        return limit is not None and job.queued_at is not None and time.time() - job.queued_at > limit

    def _fail(self, photo, reason: str) -> None:
        self.ctx.ledger.update_photo(photo.id, state="failed", reason=reason)
        log.error("%s: %s failed: %s", photo.watch, photo.rel_path, reason,
                  extra=fields(photo.watch, photo=photo.rel_path))

    def _schedule(self, job: Job, photo, url: str | None, remote: dict) -> None:
        if self._pool.in_flight(photo.id) or not self.ctx.has_watch(photo.watch):
            return
        if url is None:  # delivered: only the original is left to handle
            self._pool.submit(photo.id, finish_original, self.ctx, self.ctx.watch(photo.watch), photo)
            return
        look = self._look_for(job, remote)
        self._pool.submit(photo.id, deliver_photo, self.ctx, photo, url, look)

    def _look_for(self, job: Job, remote: dict) -> JobLook:
        """Return the job's profile and its background photos, fetched once per job."""
        if job.id not in self._looks:
            profile = remote.get("profile") or self.ctx.studio.get_profile(int(job.profile_id))
            if "photos" not in profile:
                profile = self.ctx.studio.get_profile(int(profile["id"]))
            backgrounds = [p for p in profile.get("photos") or [] if p.get("jobId") is None and p.get("originalUrl")]
            self._looks[job.id] = JobLook(
                profile=profile,
                background_stems=[Path(str(p.get("name") or f"background {i + 1}")).stem
                                  for i, p in enumerate(backgrounds)],
                backgrounds=[self._fetch_background(p["originalUrl"]) for p in backgrounds])
        return self._looks[job.id]

    def _fetch_background(self, url: str) -> pyvips.Image:
        buffer = io.BytesIO()
        self.ctx.studio.download(url, buffer)
        return pyvips.Image.new_from_buffer(buffer.getvalue(), "").copy_memory()

    def _reap(self, wakeup: threading.Event | None) -> None:
        for photo_id, outcome in self._pool.reap():
            if not isinstance(outcome, BaseException):
                self._clear_disk_notice(photo_id)
            elif isinstance(outcome, StudioError):
                log.warning("delivery of %s hit Studio trouble (%s); will try again",
                            self._describe(photo_id), outcome)
            elif isinstance(outcome, OSError):
                self._disk_trouble(photo_id, outcome)
            else:  # a bad result: retried, then failed with its reason
                self._bad_result(photo_id, outcome)
            self._close_after(photo_id)
            if wakeup is not None:
                wakeup.set()

    def _describe(self, photo_id: int) -> str:
        """Name a photo in a log line by its watch and path (`packshots: s1/IMG_1.jpg`)."""
        photo = self.ctx.ledger.get_photo(photo_id)
        return f"{photo.watch}: {photo.rel_path}" if photo else f"photo row {photo_id}"

    def _disk_trouble(self, photo_id: int, exc: OSError) -> None:
        """The output disk refused a write (full, read-only, permissions): keep the photo, say so, retry.

        Studio keeps results for about two weeks, so nothing is lost by
        waiting for a person to free space or fix permissions.
        """
        photo = self.ctx.ledger.get_photo(photo_id)
        watch = photo.watch if photo else "?"
        message = (f"cannot write outputs to {self.ctx.watch(watch).output if self.ctx.has_watch(watch) else '?'}: "
                   f"{exc.strerror or exc}; will try again")
        if self.ctx.ledger.set_notice(f"output:{watch}", message):
            log.error("%s: %s (first seen with %s)", watch, message, photo.rel_path if photo else photo_id)

    def _clear_disk_notice(self, photo_id: int) -> None:
        photo = self.ctx.ledger.get_photo(photo_id)
        if photo is not None and self.ctx.ledger.clear_notice(f"output:{photo.watch}"):
            log.info("%s: outputs can be written again", photo.watch)

    def _bad_result(self, photo_id: int, exc: BaseException) -> None:
        """A result that does not decode may be a damaged transfer: fetch it again, up to 3 times."""
        photo = self.ctx.ledger.get_photo(photo_id)
        self._bad_results[photo_id] = self._bad_results.get(photo_id, 0) + 1
        if self._bad_results[photo_id] < 3:
            log.warning("%s: the result for %s could not be used (%s); fetching it again",
                        photo.watch, photo.rel_path, exc)
            return
        log.error("%s: giving up on the result for %s: %s", photo.watch, photo.rel_path, exc)
        self._fail(photo, f"Studio's result could not be used: {exc}")

    def _close_after(self, photo_id: int) -> None:
        """Once a photo's delivery ends, finish its job if that was the last one (no need to wait a poll)."""
        photo = self.ctx.ledger.get_photo(photo_id)
        job = self.ctx.ledger.get_job(photo.job_id) if photo and photo.job_id else None
        if job is not None and job.state == "queued":
            self._close_job_if_done(job, job.studio_status or "")

    def _close_job_if_done(self, job: Job, status: str) -> None:
        if self.ctx.ledger.photos_in_state("queued", "delivering", "delivered", job_id=job.id):
            return
        final = "failed" if status in FAILED_STATUSES else "delivered"
        self.ctx.ledger.update_job(job.id, state=final, finished_at=time.time(),
                                   reason=f"Studio status {status}" if final == "failed" else None)
        self._looks.pop(job.id, None)
        self._due.pop(job.id, None)
        log.info("%s: job %s is finished (%s)", job.watch, job.name, status or "all photos delivered")
