"""Job steps that talk to Studio: create a closed job, queue a fully uploaded one,
delete one left empty.

Intent before the call is the job's state itself: `closed` means "its name is
reserved, it may or may not exist in Studio yet", `queueing` means "the queue
call may or may not have reached Studio". Both are resolved by asking Studio
(find by name, get job) before acting again.
"""

from __future__ import annotations

import logging

from skylab_watch.ledger import Job
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.studio import InvalidRequestError, NotFoundError, TransportError
from skylab_watch.studio.upload import delete_quietly

log = logging.getLogger("skylab_watch")

# Photo states that mean "this photo's upload is settled one way or the other".
UPLOAD_SETTLED = ("uploaded", "failed", "superseded")


def create_closed_job(ctx: Context, job: Job) -> None:
    """Create a closed job in Studio (or adopt the one a previous run created); record its id."""
    if job.studio_id is not None:
        ctx.ledger.update_job(job.id, state="created")
        return
    existing = ctx.studio.find_job_by_name(job.name)
    if existing is None:
        try:
            existing = ctx.studio.create_job(job.name, int(job.profile_id))
        except InvalidRequestError:
            existing = ctx.studio.find_job_by_name(job.name)
            if existing is None:
                raise
        except TransportError as exc:
            if exc.sent:
                log.info("%s: no answer while creating job %s; will look it up by name", job.watch, job.name)
            raise
        ctx.credits.succeeded()
        log.info("%s: created job %s in Studio (job %s)", job.watch, job.name, existing["id"],
                 extra=fields(job.watch, job.name))
    else:
        log.info("%s: found job %s already in Studio (job %s); not creating it again",
                 job.watch, job.name, existing["id"])
    ctx.ledger.update_job(job.id, state="created", studio_id=int(existing["id"]))


def upload_finished(ctx: Context, job: Job) -> bool:
    """Return True when every photo of the job has been uploaded, failed or been replaced."""
    return all(p.state in UPLOAD_SETTLED for p in ctx.ledger.photos_of_job(job.id))


def queue_uploaded_job(ctx: Context, job: Job) -> None:
    """Queue a job whose uploads are settled; delete it instead if none of its photos made it."""
    photos = ctx.ledger.photos_of_job(job.id)
    uploaded = [p for p in photos if p.state == "uploaded"]
    if not uploaded:
        delete_empty_job(ctx, job)
        return
    if job.state == "queueing" and _already_queued(ctx, job):
        _record_queued(ctx, job, len(uploaded))
        return
    remove_orphan_records(ctx, job, {p.studio_id for p in uploaded})
    ctx.ledger.update_job(job.id, state="queueing")
    callback = ctx.config.callback.public_url if ctx.config.callback else None
    try:
        ctx.studio.queue_job(int(job.studio_id), callback_url=callback)
    except InvalidRequestError:
        if not _already_queued(ctx, job):
            raise
    ctx.credits.succeeded()
    _record_queued(ctx, job, len(uploaded))


def _record_queued(ctx: Context, job: Job, count: int) -> None:
    with ctx.ledger.transaction():
        ctx.ledger.update_job(job.id, state="queued", queued_at=ctx.clock())
        for photo in ctx.ledger.photos_in_state("uploaded", job_id=job.id):
            ctx.ledger.update_photo(photo.id, state="queued")
    log.info("%s: queued job %s (Studio job %s) with %d photo(s)", job.watch, job.name, job.studio_id, count,
             extra=fields(job.watch, job.name))


def _already_queued(ctx: Context, job: Job) -> bool:
    """Ask Studio whether the job left `pending` (a queue call whose answer we lost)."""
    status = str(ctx.studio.get_job(int(job.studio_id)).get("status", "")).lower()
    return status not in ("", "pending")


def remove_orphan_records(ctx: Context, job: Job, keep: set[int | None]) -> int:
    """Delete Studio photo records of the job that the ledger does not count as uploaded.

    They are left by a crash between creating a record and recording it, or by
    an upload that failed; queueing them would send an empty photo.
    """
    removed = 0
    for record in ctx.studio.list_job_photos(job_id=int(job.studio_id)):
        if int(record["id"]) not in keep:
            log.info("%s: removing photo record %s (%s) from job %s: no bytes we stand behind",
                     job.watch, record["id"], record.get("name"), job.name)
            removed += delete_quietly(ctx.studio, int(record["id"]))
    return removed


def delete_empty_job(ctx: Context, job: Job) -> None:
    """Delete a job none of whose photos could be uploaded, so nothing empty is ever queued."""
    if job.studio_id is not None:
        try:
            ctx.studio.delete_job(int(job.studio_id))
        except NotFoundError:
            pass
    ctx.ledger.update_job(job.id, state="deleted", reason="no photo of the job could be uploaded")
    log.warning("%s: deleted job %s: none of its photos could be uploaded", job.watch, job.name)


def job_vanished(ctx: Context, job: Job) -> None:
    """Studio no longer knows the job (deleted in the web app?): fail what waited on it, so `retry` can resend."""
    reason = f"job {job.name} no longer exists at Studio (deleted?)"
    with ctx.ledger.transaction():
        for photo in ctx.ledger.photos_of_job(job.id):
            if photo.state in ("batched", "uploading", "uploaded", "queued", "delivering"):
                ctx.ledger.update_photo(photo.id, state="failed", reason=reason)
        ctx.ledger.update_job(job.id, state="failed", reason=reason, finished_at=ctx.clock())
    log.error("%s: %s; its photos are marked failed (skylab-watch retry sends them again)", job.watch, reason,
              extra=fields(job.watch, job.name))
