"""Batching: ready photos go into open jobs; jobs close by the watch's policy.

A job closes at `max_photos`, after `quiet_seconds` with no new photo, or
`max_wait_seconds` after it opened, whichever comes first. Its name is
generated and recorded when it opens, before Studio hears of it, so that
after a crash the job is found by name instead of created twice.

Ingest streams: the work loop creates a job at Studio as soon as its first
photo joins (`jobs.create_job`), and photos keep joining it while it is
created; closing only sets `closed_at` (a job never sent yet also becomes
`closed`). So uploads start at once instead of waiting for the batch to fill,
and the job is queued when it is closed and its uploads are done.
"""

from __future__ import annotations

import logging
import posixpath
import secrets
import time

from skylab_watch.config import WatchConfig
from skylab_watch.ledger import Job, JobState, NameTaken, PhotoState
from skylab_watch.pipeline.context import Context

log = logging.getLogger("skylab_watch")


def job_name(watch: str, now: float | None = None) -> str:
    """Return a fresh job name: watch, local time, and a random tag (`packshots-20261125-0912-3f2a`)."""
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(now))
    return f"{watch}-{stamp}-{secrets.token_hex(2)}"


def unique_studio_name(rel_path: str, taken: set[str]) -> str:
    """Return a photo name unique within a job: the file's name, or `IMG_0001 (2).JPG` if taken.

    `taken`: the names already in the job, lowercased (Studio names compare without case).
    """
    base = posixpath.basename(rel_path)
    stem, ext = posixpath.splitext(base)
    name, n = base, 1
    while name.lower() in taken:
        n += 1
        name = f"{stem} ({n}){ext}"
    return name


class _Filling:
    """The job ready photos are joining in this pass, with its names and count kept in memory, so that
    a pass of hundreds of photos does not read the job's names back from the ledger once per photo."""

    def __init__(self, ctx: Context, job: Job) -> None:
        self.ctx = ctx
        self.job = job
        self.taken = {name.lower() for name in ctx.ledger.studio_names_in_job(job.id)}
        self.count = ctx.ledger.count_job_photos(job.id)

    def add(self, photo_id: int, rel_path: str) -> None:
        """Put one ready photo into the job under a name unique in it."""
        name = unique_studio_name(rel_path, self.taken)
        self.ctx.ledger.add_to_job(photo_id, self.job.id, name)
        self.taken.add(name.lower())
        self.count += 1


def open_job_for(ctx: Context, watch: WatchConfig) -> Job:
    """Return the watch's collecting job, reserving a new one (name recorded first) if there is none."""
    existing = ctx.ledger.collecting_jobs(watch.name)
    if existing:
        return existing[0]
    for _ in range(5):
        try:
            job = ctx.ledger.reserve_job(watch.name, job_name(watch.name, ctx.clock()),
                                         ctx.profiles[watch.name])
        except NameTaken:
            continue
        log.info("%s: opened job %s", watch.name, job.name)
        return job
    raise RuntimeError("could not generate a unique job name")


def batch_ready_photos(ctx: Context, watch: WatchConfig) -> int:
    """Put the watch's ready photos into its open job, closing it when full; return how many moved.

    One transaction for the pass: a commit per photo made the loop wait on
    the upload workers' commits once per photo.
    """
    ready = ctx.ledger.photos_in_state(PhotoState.READY, watch=watch.name)
    if not ready:
        return 0
    with ctx.ledger.transaction():
        filling: _Filling | None = None
        for photo in ready:
            if filling is None:
                filling = _Filling(ctx, open_job_for(ctx, watch))
            filling.add(photo.id, photo.rel_path)
            if filling.count >= watch.batch.max_photos:
                close_job(ctx, filling.job, "it is full")
                filling = None
    return len(ready)


def close_due_jobs(ctx: Context, watch: WatchConfig, nothing_pending: bool = False) -> list[Job]:
    """Close the watch's collecting job if its policy says so; return the jobs closed.

    nothing_pending: the caller knows no more photos are on their way (used by
    `run --once`, which should not sit out quiet_seconds for nothing).
    """
    closed = []
    now = ctx.clock()
    for job in ctx.ledger.collecting_jobs(watch.name):
        count = ctx.ledger.count_job_photos(job.id)
        if count == 0:
            continue
        why = _close_reason(watch, job, count, now, nothing_pending)
        if why:
            close_job(ctx, job, why)
            closed.append(job)
    return closed


def _close_reason(watch: WatchConfig, job: Job, count: int, now: float, nothing_pending: bool) -> str | None:
    if count >= watch.batch.max_photos:
        return "it is full"
    if now - job.last_added_at >= watch.batch.quiet_seconds:
        return f"no new photo for {watch.batch.quiet_seconds:.0f} s"
    if now - job.opened_at >= watch.batch.max_wait_seconds:
        return f"its first photo has waited {watch.batch.max_wait_seconds:.0f} s"
    if nothing_pending:
        return "nothing else is waiting"
    return None


def close_job(ctx: Context, job: Job, why: str) -> None:
    """Close a job: no more photos join it; once its uploads are done it is queued.

    A job not yet sent to Studio becomes `closed`; one already being created
    or created keeps its state (the Studio side of it is unchanged).
    """
    if job.state == JobState.OPEN:
        ctx.ledger.update_job(job.id, state=JobState.CLOSED, closed_at=ctx.clock())
    else:
        ctx.ledger.update_job(job.id, closed_at=ctx.clock())
    log.info("%s: closed job %s with %d photo(s) because %s", job.watch, job.name,
             ctx.ledger.count_job_photos(job.id), why)
