"""The upload stage as the work loop drives it: hand photos to the upload workers, record what they sent.

The loop owns the ledger writes of this stage, so the sixteen workers never
queue on the ledger's lock: each pass it claims the batched photos of
created jobs that fit in the pool (one transaction), and records the uploads
finished since the last pass (one transaction). The workers only talk to
Studio and the disk (`uploader.send_claimed`), and record failures through
the outcome table.
"""

from __future__ import annotations

import logging
from typing import Callable

from skylab_watch.ledger import Job, JobState, Photo, PhotoState
from skylab_watch.pipeline import uploader
from skylab_watch.pipeline.context import Context
from skylab_watch.workers import WorkerPool

log = logging.getLogger("skylab_watch")


class Uploads:
    """The upload workers of one daemon and the loop's two steps around them: `submit` and `reap`."""

    def __init__(self, ctx: Context, concurrency: int) -> None:
        self.ctx = ctx
        self._pool: WorkerPool[int] = WorkerPool(concurrency, "upload")

    def submit(self, may_work_on: Callable[[str], bool]) -> None:
        """Hand batched photos of created jobs to the workers while the pool has room, claimed (marked
        `uploading`, the try counted) in one transaction first; `may_work_on(watch)` says whose files may
        be read now."""
        if not self.ctx.credits.is_open():
            return
        created = {j.id: j for j in self.ctx.ledger.jobs_in_state(JobState.CREATED)}
        room = self._pool.capacity - len(self._pool)
        chosen: dict[int, Job] = {}
        photos: list[Photo] = []
        for photo in self.ctx.ledger.photos_in_state(PhotoState.BATCHED, PhotoState.UPLOADING):
            if len(photos) >= room:
                break
            job = created.get(photo.job_id) if photo.job_id is not None else None
            if job is not None and not self._pool.in_flight(photo.id) and may_work_on(photo.watch) \
                    and self.ctx.deferrals.due(("photo", photo.id)):
                chosen[photo.id] = job
                photos.append(photo)
        for photo in uploader.claim_uploads(self.ctx, photos) if photos else ():
            self._pool.submit(photo.id, uploader.send_claimed, self.ctx, photo, chosen[photo.id])

    def reap(self, describe: Callable[[int], str]) -> int:
        """Record the uploads finished since the last pass (one transaction for all); return how many
        pieces of work ended (a reason for the loop to come round again)."""
        finished = self._pool.reap()
        sent = []
        for photo_id, outcome in finished:
            if isinstance(outcome, uploader.Sent):
                sent.append(outcome)
            elif isinstance(outcome, BaseException):  # send_claimed settles every error; this is a bug
                log.error("the upload of %s crashed; it will be tried again", describe(photo_id), exc_info=outcome)
        if sent:
            uploader.record_sent(self.ctx, sent)
        return len(finished)

    def busy(self) -> bool:
        """Return True while an upload is waiting, running, or finished and not yet recorded."""
        return self._pool.busy()

    def __len__(self) -> int:
        """How many uploads are handed to the workers and not yet recorded."""
        return len(self._pool)

    def close(self) -> None:
        """Start no more uploads (those claimed and not started are redone on the next start)."""
        self._pool.close()

    def shutdown(self, grace_seconds: float) -> list[int]:
        """Wait up to `grace_seconds` for running uploads; return the photo ids abandoned."""
        return self._pool.shutdown(grace_seconds)
