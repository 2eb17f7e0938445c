"""Uploading one photo: find or create its Studio record, PUT its bytes.

The photo's state is the intent: `uploading` is set (and the attempt counted)
before any call, so a later pass knows a record may already exist and lists
the job's photos before creating one again. A record found with an
`originalUrl` already holds our bytes: the upload is recorded as done.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path

from skylab_watch.ledger import Job, Photo
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.studio import (
    BadDigestError, InvalidRequestError, OutOfCreditsError, ServerError, StudioError, TransportError,
)
from skylab_watch.studio.upload import delete_quietly, send_photo_bytes

log = logging.getLogger("skylab_watch")

MAX_UPLOAD_ATTEMPTS = 3


class FileChanged(Exception):
    """The file's bytes no longer match the hash recorded for this version."""


def upload_photo(ctx: Context, photo: Photo) -> str:
    """Upload one batched photo of a created job; return its new state.

    Out of credits is raised to the caller (it pauses, nothing fails). Other
    errors the retry policy gave up on count an attempt; after
    MAX_UPLOAD_ATTEMPTS the photo is failed with the reason, its record deleted.
    """
    photo = ctx.ledger.get_photo(photo.id)
    job = ctx.ledger.get_job(photo.job_id)
    if photo.state not in ("batched", "uploading") or job is None or job.studio_id is None:
        return photo.state
    if not ctx.ledger.claim_photo(photo.id, ("batched", "uploading"), "uploading", attempts=photo.attempts + 1):
        return ctx.ledger.get_photo(photo.id).state  # superseded meanwhile: leave it alone
    try:
        return _upload(ctx, photo, job)
    except OutOfCreditsError:
        ctx.ledger.update_photo(photo.id, attempts=photo.attempts)  # not the photo's fault: no attempt used
        raise
    except FileChanged:
        return _supersede(ctx, photo, job)
    except StudioError as exc:
        return _upload_failed(ctx, photo, job, exc)
    except OSError as exc:
        return _fail(ctx, photo, job, f"cannot read the file: {exc.strerror or exc}")


def _upload(ctx: Context, photo: Photo, job: Job) -> str:
    data = _read_bytes(ctx, photo)
    earlier_try = photo.attempts > 0
    studio_id = photo.studio_id or (_find_record(ctx, photo, job) if earlier_try else None)
    if studio_id is not None and _record_has_bytes(ctx, studio_id):
        return _uploaded(ctx, photo, job, studio_id, resumed=True)
    if studio_id is None:
        studio_id = _create_record(ctx, photo, job)
    md5_b64 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")
    try:
        send_photo_bytes(ctx.studio, studio_id, data, md5_b64)
    except BadDigestError:
        _read_bytes(ctx, photo)  # raises FileChanged if the file moved on since it was hashed
        raise
    return _uploaded(ctx, photo, job, studio_id)


def _create_record(ctx: Context, photo: Photo, job: Job) -> int:
    """Create the photo's Studio record and record its id.

    A refusal (422: name taken) or a lost answer may mean an earlier try did
    create it: look the name up before giving up, never create it twice.
    """
    try:
        record = ctx.studio.create_photo(photo.studio_name, job_id=int(job.studio_id))
    except (InvalidRequestError, ServerError, TransportError):
        found = _find_record(ctx, photo, job)
        if found is None:
            raise
        return found
    studio_id = int(record["id"])
    ctx.ledger.update_photo(photo.id, studio_id=studio_id)
    return studio_id


def _read_bytes(ctx: Context, photo: Photo) -> bytes:
    """Read what will be sent; raise FileChanged if the original no longer has the recorded content."""
    watch = ctx.watch(photo.watch)
    original = watch.input / photo.rel_path
    data = original.read_bytes()
    if hashlib.md5(data).hexdigest() != photo.md5:
        raise FileChanged(str(original))
    if photo.upload_path:
        return Path(photo.upload_path).read_bytes()
    return data


def _find_record(ctx: Context, photo: Photo, job: Job) -> int | None:
    """Look for a record an earlier try may have created under the photo's name (list before create)."""
    for record in ctx.studio.list_job_photos(job_id=int(job.studio_id)):
        if record.get("name") == photo.studio_name:
            ctx.ledger.update_photo(photo.id, studio_id=int(record["id"]))
            return int(record["id"])
    return None


def _record_has_bytes(ctx: Context, studio_id: int) -> bool:
    return bool(ctx.studio.get_photo(studio_id).get("originalUrl"))


def _uploaded(ctx: Context, photo: Photo, job: Job, studio_id: int, resumed: bool = False) -> str:
    ctx.ledger.update_photo(photo.id, state="uploaded", studio_id=studio_id, reason=None)
    ctx.credits.succeeded()
    how = "found already uploaded" if resumed else "uploaded"
    log.info("%s: %s %s to job %s (photo %s)", photo.watch, how, photo.rel_path, job.name, studio_id,
             extra=fields(photo.watch, job.name, photo.rel_path))
    return "uploaded"


def _supersede(ctx: Context, photo: Photo, job: Job) -> str:
    """The file changed after it was hashed: never send it under the old hash; it will come back as a new version."""
    fresh = ctx.ledger.get_photo(photo.id)
    if fresh.studio_id is not None:
        delete_quietly(ctx.studio, fresh.studio_id)
    ctx.ledger.update_photo(photo.id, state="superseded", studio_id=None,
                            reason="the file changed while it was being sent; the new content is a new version")
    log.info("%s: %s changed while being sent to job %s; it will be sent again as a new version",
             photo.watch, photo.rel_path, job.name)
    return "superseded"


def _upload_failed(ctx: Context, photo: Photo, job: Job, exc: StudioError) -> str:
    if exc.retryable and photo.attempts + 1 < MAX_UPLOAD_ATTEMPTS:
        log.warning("%s: upload of %s to job %s failed (%s); will try again", photo.watch,
                    photo.rel_path, job.name, exc)
        return "uploading"
    return _fail(ctx, photo, job, f"upload failed: {exc}")


def _fail(ctx: Context, photo: Photo, job: Job, reason: str) -> str:
    fresh = ctx.ledger.get_photo(photo.id)
    if fresh.studio_id is not None:
        delete_quietly(ctx.studio, fresh.studio_id)
    ctx.ledger.update_photo(photo.id, state="failed", reason=reason)
    log.error("%s: could not send %s in job %s: %s", photo.watch, photo.rel_path, job.name, reason,
              extra=fields(photo.watch, job.name, photo.rel_path))
    return "failed"
