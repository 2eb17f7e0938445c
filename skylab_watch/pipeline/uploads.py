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


CLAIMED_PER_WORKER = 4
"""Photos claimed and handed to the pool per upload worker (one running, three waiting). The loop talks to
Studio itself between its passes (creating, queueing and looking at jobs: 0.1 to 0.5 s at 50 ms a call); with
only one photo waiting per worker, sixteen workers ran dry during such a pass and the benchmark showed them
idle a tenth of the time. A claim is only a ledger mark: a stop leaves the waiting ones to the next start."""


class _Withdrawn:
    """What a worker hands back for a claimed photo it did not send: its watch may not be worked on now."""


WITHDRAWN = _Withdrawn()


class Uploads:
    """The upload workers of one daemon and the loop's two steps around them: `submit` and `reap`."""

    def __init__(self, ctx: Context, concurrency: int, may_work_on: Callable[[str], bool] = lambda watch: True,
                 on_low: Callable[[], None] | None = None) -> None:
        """`may_work_on(watch)` says whose files may be read now: asked when photos are claimed, and again by
        the worker that reaches one. `on_low` is called (from a worker) when the workers run short of photos."""
        self.ctx = ctx
        self._may_work_on = may_work_on
        self._on_low = on_low
        self._pool: WorkerPool[int] = WorkerPool(concurrency, "upload", capacity=CLAIMED_PER_WORKER * concurrency)
        self._handed: dict[int, Photo] = {}  # claimed and handed to the pool, not yet reaped: as read before

    def submit(self) -> None:
        """Hand batched photos of created jobs to the workers while the pool has room, claimed (marked
        `uploading`, the try counted) in one transaction first."""
        if not self.ctx.credits.is_open():
            return
        created = {j.id: j for j in self.ctx.ledger.jobs_in_state(JobState.CREATED)}
        room = self._pool.capacity - len(self._pool)
        chosen: dict[int, Job] = {}
        for photo_id, watch, job_id in self.ctx.ledger.photo_heads_in_state(PhotoState.BATCHED,
                                                                             PhotoState.UPLOADING):
            if len(chosen) >= room:
                break
            job = created.get(job_id) if job_id is not None else None
            if job is not None and not self._pool.in_flight(photo_id) and self._may_work_on(watch) \
                    and self.ctx.deferrals.due(("photo", photo_id)):
                chosen[photo_id] = job
        photos = self.ctx.ledger.photos_by_id(list(chosen))  # only the chosen are read whole, every pass
        for photo in uploader.claim_uploads(self.ctx, photos) if photos else ():
            self._handed[photo.id] = photo
            self._pool.submit(photo.id, self._send, photo, chosen[photo.id])

    def _send(self, photo: Photo, job: Job) -> uploader.Sent | str | _Withdrawn:
        """Send one claimed photo (on a worker); then, if fewer photos wait for a worker than there are
        workers, call `on_low`: the loop comes round to record and hand over more now, not at its next tick,
        so the workers never run dry while photos wait to be claimed.

        A photo whose watch may no longer be worked on when a worker reaches it (paused by hand, its share
        gone, removed by a reload) is not sent: the loop gives its claim back, and a pause holds from the
        pass that sees it, whatever was claimed before."""
        try:
            if not self._may_work_on(photo.watch):
                return WITHDRAWN
            return uploader.send_claimed(self.ctx, photo, job)
        finally:
            if self._on_low is not None and self._pool.queued() < self._pool.size:
                self._on_low()

    def reap(self, describe: Callable[[int], str]) -> int:
        """Record the uploads finished since the last pass (one transaction for all); return how many
        pieces of work ended (a reason for the loop to come round again)."""
        finished = self._pool.reap()
        sent, withdrawn = [], []
        for photo_id, outcome in finished:
            photo = self._handed.pop(photo_id, None)
            if isinstance(outcome, uploader.Sent):
                sent.append(outcome)
            elif outcome is WITHDRAWN and photo is not None:
                withdrawn.append(photo)
            elif isinstance(outcome, BaseException):  # send_claimed settles every error; this is a bug
                log.error("the upload of %s crashed; it will be tried again", describe(photo_id), exc_info=outcome)
        if sent:
            uploader.record_sent(self.ctx, sent)
        if withdrawn:
            uploader.return_claims(self.ctx, withdrawn)
        return len(finished)

    def busy(self) -> bool:
        """Return True while an upload is waiting, running, or finished and not yet recorded."""
        return self._pool.busy()

    def __len__(self) -> int:
        """How many uploads are handed to the workers and not yet recorded."""
        return len(self._pool)

    def close(self) -> None:
        """Start no more uploads; those claimed and not started get their try back (`return_claims`) and are
        sent by the next start."""
        dropped = [self._handed.pop(photo_id) for photo_id in self._pool.close() if photo_id in self._handed]
        if dropped:
            uploader.return_claims(self.ctx, dropped)

    def shutdown(self, grace_seconds: float) -> list[int]:
        """Wait up to `grace_seconds` for running uploads; return the photo ids abandoned."""
        return self._pool.shutdown(grace_seconds)
