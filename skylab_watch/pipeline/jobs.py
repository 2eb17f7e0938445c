"""Job steps that talk to Studio: create a job (as soon as its first photo joins it), queue a
closed and fully uploaded one, delete one left empty.

Intent before the call is the job's state itself: `creating` means "a create
call may have reached Studio", `queueing` means "the queue call may or may
not have reached Studio". Both are resolved by asking Studio (find by name,
get job) before acting again; an `open` or `closed` job was never sent, so it
is created without a look-up.
"""

from __future__ import annotations

import logging

from skylab_watch.ledger import Job, JobState, PhotoState
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.failures import create_or_adopt
from skylab_watch.studio import InvalidRequestError, NotFoundError
from skylab_watch.studio.records import job_state as job_state_of
from skylab_watch.studio.upload import delete_quietly

log = logging.getLogger("skylab_watch")

# Photo states that mean "this photo's upload is settled one way or the other".
UPLOAD_SETTLED = (PhotoState.UPLOADED, PhotoState.FAILED, PhotoState.SUPERSEDED)


def create_job(ctx: Context, job: Job) -> None:
    """Create a job in Studio (or adopt the one a previous run created); record its id.

    Called as soon as the job holds a photo, whether or not it is closed:
    photos keep joining a created job until it closes, and each is uploaded
    as soon as it is validated.

    The name is looked up first only when an earlier create's outcome is
    unknown (a create after the job was first closed, or after a restart).
    A 5xx or a lost answer is followed by a look-up by name, and the job is
    created if it is absent; a refusal (422) stands and is the caller's to
    report.
    """
    if job.studio_id is not None:
        ctx.ledger.update_job(job.id, state=JobState.CREATED)
        return
    existing = ctx.studio.read_job_by_name(job.name) if job.state == JobState.CREATING else None
    if existing is None:
        ctx.ledger.update_job(job.id, state=JobState.CREATING)  # intent: from here a create may have happened
        existing = create_or_adopt(
            lambda: job_state_of(ctx.studio.create_job(job.name, job.require_profile_id())),
            lambda: ctx.studio.read_job_by_name(job.name), f"{job.watch}: job {job.name}")
        ctx.credits.succeeded()
        log.info("%s: created job %s in Studio (job %s)", job.watch, job.name, existing.id,
                 extra=fields(job.watch, job.name))
    else:
        log.info("%s: found job %s already in Studio (job %s); not creating it again",
                 job.watch, job.name, existing.id)
    ctx.health.succeeded()
    ctx.ledger.update_job(job.id, state=JobState.CREATED, studio_id=existing.id, studio_type=existing.kind,
                          studio_status=existing.status)


def ready_to_queue(ctx: Context, job: Job) -> bool:
    """Return True for a job that is closed (no photo joins it any more) and whose uploads are settled."""
    return job.closed_at is not None and upload_finished(ctx, job)


def upload_finished(ctx: Context, job: Job) -> bool:
    """Return True when every photo of the job has been uploaded, failed or been replaced."""
    return ctx.ledger.job_photos_all_in(job.id, *UPLOAD_SETTLED)


def queue_uploaded_job(ctx: Context, job: Job) -> None:
    """Queue a job whose uploads are settled; delete it instead if none of its photos made it.

    The job's photos are listed (to remove records we do not stand behind)
    only when something went wrong during its uploads or a queue call may
    already have happened: a clean job is queued in one call.
    """
    photos = ctx.ledger.photos_of_job(job.id)
    uploaded = [p for p in photos if p.state == PhotoState.UPLOADED]
    if not uploaded:
        delete_empty_job(ctx, job)
        return
    if job.state == JobState.QUEUEING and _already_queued(ctx, job):
        _record_queued(ctx, job, len(uploaded))
        return
    if job.state == JobState.QUEUEING or any(p.attempts > 1 or p.state != PhotoState.UPLOADED for p in photos):
        remove_orphan_records(ctx, job, {p.studio_id for p in uploaded})
    ctx.ledger.update_job(job.id, state=JobState.QUEUEING)
    callback = ctx.config.callback.public_url if ctx.config.callback else None
    try:
        ctx.studio.queue_job(job.require_studio_id(), callback_url=callback)
    except InvalidRequestError:
        if not _already_queued(ctx, job):
            raise
    ctx.credits.succeeded()
    ctx.health.succeeded()
    _record_queued(ctx, job, len(uploaded))


def _record_queued(ctx: Context, job: Job, count: int) -> None:
    with ctx.ledger.transaction():
        ctx.ledger.update_job(job.id, state=JobState.QUEUED, queued_at=ctx.clock())
        for photo in ctx.ledger.photos_in_state(PhotoState.UPLOADED, job_id=job.id):
            ctx.ledger.update_photo(photo.id, state=PhotoState.QUEUED)
    log.info("%s: queued job %s (Studio job %s) with %d photo(s)", job.watch, job.name, job.studio_id, count,
             extra=fields(job.watch, job.name))


def _already_queued(ctx: Context, job: Job) -> bool:
    """Ask Studio whether the job was queued (a queue call whose answer we lost, or a 422 on queue).

    No status word is assumed but `completed` and the failed family: the job
    left its not-queued state if its status differs from the one it had when
    it was created, if it is terminal, or if any photo already has a result.
    """
    state = ctx.studio.read_job(job.require_studio_id())
    if state.terminal or (job.studio_status is not None and state.status != job.studio_status):
        return True
    return state.has_results


def remove_orphan_records(ctx: Context, job: Job, keep: set[int | None]) -> int:
    """Delete Studio photo records of the job that the ledger does not count as uploaded.

    They are left by a crash between creating a record and recording it, or by
    an upload that failed; queueing them would send an empty photo.
    """
    removed = 0
    for record in ctx.studio.list_job_photos(job_id=job.require_studio_id()):
        if int(record["id"]) not in keep:
            log.info("%s: removing photo record %s (%s) from job %s: no bytes we stand behind",
                     job.watch, record["id"], record.get("name"), job.name)
            removed += delete_quietly(ctx.studio, int(record["id"]))
    return removed


def delete_empty_job(ctx: Context, job: Job) -> None:
    """Delete a job none of whose photos could be uploaded, so nothing empty is ever queued."""
    if job.studio_id is not None:
        try:
            ctx.studio.delete_job(job.require_studio_id())
        except NotFoundError:
            pass
    ctx.ledger.update_job(job.id, state=JobState.DELETED, reason="no photo of the job could be uploaded")
    log.warning("%s: deleted job %s: none of its photos could be uploaded", job.watch, job.name)
