"""Uploading one photo: find or create its Studio record, PUT its bytes.

The photo's state is the intent: `uploading` is set (and the try counted)
before any call, so a later pass knows a record may already exist and lists
the job's photos before creating one again (recovery only: a clean upload
never lists). Proof of upload is our own successful PUT, recorded by the
loop for every upload of a pass at once (`record_sent`): no answer field of
Studio's is taken for it. The file is read once, streamed
from the descriptor that was checked to be the validated file, and sent
under the MD5 intake recorded: the store refuses any other bytes.
Every failure goes through the outcome table (`failures.photo_step_failed`).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from skylab_watch.ledger import Job, Photo, PhotoState
from skylab_watch.ledger.states import UPLOADABLE_STATES
from skylab_watch.logs import fields
from skylab_watch.pipeline import failures
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.outcomes import FileChanged, FileVanished, Outcome, watch_unavailable
from skylab_watch.studio import BadDigestError
from skylab_watch.studio.upload import FileBody, delete_quietly, send_photo_bytes
from skylab_watch.watch.plain_files import NotPlainFile, open_plain_file, read_at_most
from skylab_watch.watch.validate import MAX_BYTES, make_resized_copy

log = logging.getLogger("skylab_watch")


def upload_photo(ctx: Context, photo: Photo) -> str:
    """Upload one batched photo of a created job; return its new state.

    A passing fault leaves it `uploading` (deferred with backoff); a
    permanent one fails it at once, its Studio record deleted.
    """
    current = ctx.ledger.get_photo(photo.id)
    job = ctx.ledger.get_job(current.job_id) if current is not None and current.job_id is not None else None
    if current is None or current.state not in UPLOADABLE_STATES or job is None or job.studio_id is None:
        return current.state if current is not None else "gone"
    if not claim_uploads(ctx, [current]):
        return ctx.ledger.reread_photo(current).state  # superseded meanwhile: leave it alone
    outcome = send_claimed(ctx, current, job)
    if isinstance(outcome, Sent):
        record_sent(ctx, [outcome])
        return ctx.ledger.reread_photo(current).state
    return outcome


@dataclass(frozen=True)
class Sent:
    """A photo's bytes are stored at Studio under record `studio_id`; the caller records it (`record_sent`)."""

    photo: Photo
    job: Job
    studio_id: int


def claim_uploads(ctx: Context, photos: list[Photo]) -> list[Photo]:
    """Mark each photo `uploading` and count the try, if it is still uploadable; return those claimed.

    One transaction for all: the loop claims every photo it hands to the
    upload pool in a pass at once (a commit per photo, made by sixteen
    workers, had them queue on the ledger lock). The photos are returned as
    they were read, before the claim: `attempts` says whether an earlier try
    may have left a record at Studio. A photo changed meanwhile by another
    thread (superseded) is left alone.
    """
    with ctx.ledger.transaction():
        return [photo for photo in photos
                if ctx.ledger.claim_photo(photo.id, UPLOADABLE_STATES, PhotoState.UPLOADING,
                                          attempts=photo.attempts + 1)]


def return_claims(ctx: Context, photos: list[Photo]) -> None:
    """Give back the try counted for photos claimed and never started (a stop dropped them from the upload
    queue, or their watch was paused before a worker reached them), all in one transaction: nothing was
    sent for them, so the next try creates their record at once instead of first listing the job's photos
    for one an earlier try might have left. `photos` are as `claim_uploads` returned them (read before the
    claim)."""
    with ctx.ledger.transaction():
        for photo in photos:
            ctx.ledger.claim_photo(photo.id, (PhotoState.UPLOADING,), PhotoState.UPLOADING, attempts=photo.attempts)


def send_claimed(ctx: Context, photo: Photo, job: Job) -> Sent | str:
    """Send a photo claimed by `claim_uploads` to its created `job`; return what was sent, or the photo's new
    state after a failure (recorded here, through the outcome table).

    A success is not recorded here but handed back: the loop records every
    upload finished since its last pass in one transaction (`record_sent`),
    so sixteen workers do not queue on the ledger's lock once per photo. Until
    then the photo is `uploading`; after a crash in between, the next start
    finds the record by name and sends the bytes again (the recovery path).
    """
    try:
        return Sent(photo, job, _upload(ctx, photo, job))
    except Exception as exc:  # noqa: BLE001 - the outcome table decides, one place for every stage
        outcome = failures.photo_step_failed(ctx, photo, exc, "upload", job)
        if outcome is Outcome.SUPERSEDE:
            return _supersede(ctx, photo, job)
        if outcome is Outcome.FAIL_ITEM:
            _delete_record(ctx, photo)
            return PhotoState.FAILED
        return PhotoState.UPLOADING


def _upload(ctx: Context, photo: Photo, job: Job) -> int:
    """Send the photo and return its Studio record's id: the validated file streamed from its descriptor
    (read once, under the MD5 intake recorded, which the store checks), or the resized copy. Clean path: no
    listing and no ledger write; the Studio id is recorded only if the send fails, for the next try to reuse."""
    with _validated_body(ctx, photo) as body:
        studio_id = photo.studio_id
        if studio_id is None and photo.attempts > 0:
            studio_id = _find_record(ctx, photo, job)  # an earlier try may have created it: list before create
        if studio_id is None:
            studio_id = _create_record(ctx, photo, job)
        try:
            send_photo_bytes(ctx.studio, studio_id, body, regular_job=_regular(ctx, job))
            if isinstance(body, FileBody) and body.short:
                raise FileChanged(f"{photo.rel_path}: the file got shorter while it was sent")
        except BaseException as exc:
            if studio_id != photo.studio_id:
                ctx.ledger.update_photo(photo.id, studio_id=studio_id)  # the next try reuses the record
            if isinstance(exc, BadDigestError) and isinstance(body, FileBody) and not body.still_matches():
                raise FileChanged(f"{photo.rel_path}: the file changed since it was validated") from exc
            raise
    return studio_id


def _regular(ctx: Context, job: Job) -> bool:
    """Return True for a `regular` job (uploads then carry the S3 tagging), asking Studio once if unknown."""
    if job.studio_type is None:
        kind = ctx.studio.read_job(job.require_studio_id()).kind or ""
        ctx.ledger.update_job(job.id, studio_type=kind)
        return kind == "regular"
    return job.studio_type == "regular"


def _create_record(ctx: Context, photo: Photo, job: Job) -> int:
    """Create the photo's Studio record and record its id; after a refusal or a lost answer the record an
    earlier try may have made is adopted, never created twice (`failures.create_or_adopt`)."""
    name = photo.studio_name
    assert name is not None, "a photo gets its Studio name when it is batched"
    studio_id = failures.create_or_adopt(
        lambda: int(ctx.studio.create_photo(name, job_id=job.require_studio_id())["id"]),
        lambda: _find_record(ctx, photo, job), f"{failures.where(photo)}: the photo record")
    return studio_id


@contextmanager
def _validated_body(ctx: Context, photo: Photo) -> Iterator[FileBody | bytes]:
    """Yield what will be sent; raise FileChanged if the original is no longer the file that was validated.

    The original is opened without following a link and without blocking,
    and must still be the regular file recorded (device, inode, size,
    mtime); it is then streamed from that descriptor, no further than its
    recorded size, and sent under the recorded md5 (the store refuses
    other bytes). A link to /dev/zero, a FIFO or a grown file
    swapped in after validation is never read as the photo. For an oversized
    original the resized copy is sent (read whole: it is small, and its md5
    is not the recorded one). A read that fails because the watch's folder
    itself is gone (an unmounted share) pauses the photo instead of failing
    it: the file is not lost.
    """
    root = ctx.watch(photo.watch).input
    original = root / photo.rel_path
    try:
        fd = _open_validated(original, photo)
    except NotPlainFile as exc:
        raise FileChanged(f"{exc.filename}: {exc.strerror}") from exc
    except OSError as exc:
        raise input_error(root, original, exc) from exc
    try:
        body = _body(fd, photo, original)
    except OSError as exc:
        os.close(fd)
        raise input_error(root, original, exc) from exc
    except BaseException:
        os.close(fd)
        raise
    try:
        yield body
    finally:
        os.close(fd)


def _body(fd: int, photo: Photo, original: Path) -> FileBody | bytes:
    """Return the streamed original, or (for an oversized one) the resized copy once the original is checked."""
    if not photo.upload_path:
        return FileBody(fd, photo.size, photo.md5)
    data = read_at_most(fd, photo.size + 1)
    if len(data) != photo.size or hashlib.md5(data).hexdigest() != photo.md5:
        raise FileChanged(f"{original}: not the content that was validated")
    return _copy_or_remake(original, Path(photo.upload_path))


def _open_validated(path: Path, photo: Photo) -> int:
    """Return a descriptor of the original if it is still the file recorded; raise FileChanged if not.

    Rows recorded before the ledger knew device and inode (None) are checked on what they have.
    """
    fd, info = open_plain_file(path)
    recorded = (photo.device, photo.inode, photo.size, photo.mtime_ns)
    now = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if any(was is not None and was != is_now for was, is_now in zip(recorded, now, strict=True)):
        os.close(fd)
        raise FileChanged(f"{path}: not the file that was validated (it was replaced or written to)")
    return fd


def _copy_or_remake(original: Path, copy: Path) -> bytes:
    """Return the resized copy to send; a copy gone or spoiled in staging is made again from the original.

    The original was just checked to be the validated file, so the copy can be rebuilt from it; giving
    up here would lose the photo, since intake sees an unchanged original and never looks at it again.
    """
    try:
        return _read_copy(copy)
    except (OSError, FileChanged) as exc:
        log.warning("the resized copy %s cannot be used (%s); making it again from %s",
                    copy, exc, original)
    if not make_resized_copy(original, copy).ok:
        raise FileChanged(f"{original}: a resized copy could not be made again")
    return _read_copy(copy)


def _read_copy(path: Path) -> bytes:
    """Return the resized copy from staging, read as a plain file of at most Studio's byte limit."""
    fd, _info = open_plain_file(path)
    try:
        data = read_at_most(fd, MAX_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise FileChanged(f"{path}: the resized copy is larger than Studio accepts (replaced?)")
    return data


def input_error(root: Path, path: Path, exc: OSError) -> OSError:
    """Given a failed read of an original, return the error that says whose fault it is."""
    gone = watch_unavailable(root)
    if gone is not None:
        return gone
    if isinstance(exc, FileNotFoundError):
        return FileVanished(errno.ENOENT, "the original was moved or deleted before it was sent", str(path))
    return exc


def _find_record(ctx: Context, photo: Photo, job: Job) -> int | None:
    """Look for a record an earlier try may have created under the photo's name (list before create)."""
    for record in ctx.studio.list_job_photos(job_id=job.require_studio_id()):
        if record.get("name") == photo.studio_name:
            ctx.ledger.update_photo(photo.id, studio_id=int(record["id"]))
            return int(record["id"])
    return None


def record_sent(ctx: Context, sent: list[Sent]) -> None:
    """Record finished uploads as `uploaded`, all in one transaction; a photo no longer `uploading` (a newer
    version superseded it meanwhile) is left as it is."""
    with ctx.ledger.transaction():
        for item in sent:
            photo = item.photo
            if not ctx.ledger.claim_photo(photo.id, (PhotoState.UPLOADING,), PhotoState.UPLOADED,
                                          studio_id=item.studio_id, reason=None, trouble_since=None):
                log.info("%s: %s was sent to job %s but has changed state meanwhile; left as it is",
                         photo.watch, photo.rel_path, item.job.name)
                continue
            failures.step_succeeded(ctx, photo)
            log.info("%s: uploaded %s to job %s (photo %s)", photo.watch, photo.rel_path, item.job.name,
                     item.studio_id, extra=fields(photo.watch, item.job.name, photo.rel_path))
    ctx.credits.succeeded()
    ctx.health.succeeded()


def _supersede(ctx: Context, photo: Photo, job: Job) -> str:
    """The file changed after it was hashed: never send it under the old hash; it will come back as a new version."""
    fresh = ctx.ledger.reread_photo(photo)
    if fresh.studio_id is not None:
        delete_quietly(ctx.studio, fresh.studio_id)
    ctx.ledger.update_photo(photo.id, state=PhotoState.SUPERSEDED, studio_id=None,
                            reason="the file changed while it was being sent; the new content is a new version")
    log.info("%s: %s changed while being sent to job %s; it will be sent again as a new version",
             photo.watch, photo.rel_path, job.name)
    return PhotoState.SUPERSEDED


def _delete_record(ctx: Context, photo: Photo) -> None:
    """A failed photo's Studio record holds no bytes we stand behind: delete it so the job stays clean."""
    fresh = ctx.ledger.get_photo(photo.id)
    if fresh is not None and fresh.studio_id is not None:
        delete_quietly(ctx.studio, fresh.studio_id)
