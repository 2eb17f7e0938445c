"""Acting on the outcome table: every stage reports a failed step here.

`outcomes.TABLE` says what an error means; this module does it to a photo or
a job: defer it with backoff (starting its give-up clock), pause Studio work,
close the credit gate, fail it with a reason that names the watch and the
file. Keeping the doing in one place is what makes "a passing fault never
costs a photo" true for every stage at once.
"""

from __future__ import annotations

import logging

from skylab_watch.ledger import Job, Photo
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.outcomes import LOOK_AGAIN_TRIES, Outcome, classify
from skylab_watch.studio import StudioError

log = logging.getLogger("skylab_watch")

# Photo states in which a photo still waits on its job (a job-level failure ends them).
WAITING_ON_JOB = ("batched", "uploading", "uploaded", "queued", "delivering")


def where(photo: Photo) -> str:
    """Return how a person finds a photo again: `watch: path`."""
    return f"{photo.watch}: {photo.rel_path}"


def photo_step_failed(ctx: Context, photo: Photo, exc: BaseException, doing: str,
                      job: Job | None = None) -> Outcome:
    """Given a photo step that raised `exc`, do what the outcome table says; return the outcome.

    SUPERSEDE is returned for the caller to act on (it knows what to undo).
    """
    rule = classify(exc)
    outcome = rule.outcome
    detail = f"{doing} failed: {_describe(exc)}"
    key = ("photo", photo.id)
    if outcome is Outcome.SUPERSEDE:
        return outcome
    if outcome is Outcome.FAIL_ITEM:
        fail_photo(ctx, photo, f"{doing} failed: {rule.meaning}: {_describe(exc)}", job)
        return outcome
    if outcome is Outcome.LOOK_AGAIN:
        if ctx.deferrals.count_try(key) >= LOOK_AGAIN_TRIES:
            fail_photo(ctx, photo, f"{detail} (after {LOOK_AGAIN_TRIES} tries)", job)
            return Outcome.FAIL_ITEM
        ctx.deferrals.defer(key)
        log.warning("%s: %s; trying again after a fresh look", where(photo), detail,
                    extra=fields(photo.watch, photo=photo.rel_path))
        return outcome
    _pause(ctx, photo, outcome, exc, rule.meaning)
    if over_budget(ctx, photo):
        fail_photo(ctx, photo, f"{detail}; still failing after "
                   f"{ctx.give_up_seconds / 3600:.0f} h of passing faults", job)
        return Outcome.FAIL_ITEM
    wait = ctx.deferrals.defer(key, getattr(exc, "retry_after", None))
    if outcome is Outcome.RETRY_LATER and not isinstance(exc, (StudioError, OSError)):
        log.exception("%s: unexpected error while %s; trying again in %.0f s", where(photo), doing, wait)
    elif outcome is Outcome.RETRY_LATER:
        log.info("%s: %s; trying again in %.0f s", where(photo), detail, wait,
                 extra=fields(photo.watch, photo=photo.rel_path))
    return outcome


def _pause(ctx: Context, photo: Photo, outcome: Outcome, exc: BaseException, meaning: str) -> None:
    """Apply the daemon-wide side of a transient outcome, and start the photo's give-up clock."""
    if outcome is Outcome.PAUSE_CREDITS:
        ctx.credits.out_of_credits(getattr(exc, "message", str(exc)))
    elif outcome is Outcome.BACK_OFF_STUDIO:
        ctx.health.trouble(exc)
    elif outcome is Outcome.PAUSE_OUTPUT:
        watch = photo.watch
        output = ctx.watch(watch).output if ctx.has_watch(watch) else "?"
        message = f"cannot write outputs to {output}: {_describe(exc)}; will try again"
        if ctx.ledger.set_notice(f"output:{watch}", message):
            log.error("%s: %s (first seen with %s)", watch, message, photo.rel_path)
    fresh = ctx.ledger.get_photo(photo.id)
    if fresh is not None and fresh.trouble_since is None:
        ctx.ledger.update_photo(photo.id, trouble_since=ctx.clock())


def over_budget(ctx: Context, photo: Photo) -> bool:
    """Return True when the photo has met passing faults for longer than `retry.give_up_after_hours`."""
    fresh = ctx.ledger.get_photo(photo.id)
    since = fresh.trouble_since if fresh is not None else None
    return since is not None and ctx.clock() - since > ctx.give_up_seconds


def step_succeeded(ctx: Context, photo: Photo) -> None:
    """A photo's step went through: forget its backoff (its trouble clock is reset with its new state)."""
    ctx.deferrals.clear(("photo", photo.id))


def fail_photo(ctx: Context, photo: Photo, detail: str, job: Job | None = None) -> None:
    """Mark a photo failed for good, with a reason naming watch and file; `retry` sends it again."""
    reason = f"{where(photo)}: {detail}"
    ctx.ledger.update_photo(photo.id, state="failed", reason=reason, trouble_since=None)
    ctx.deferrals.clear(("photo", photo.id))
    in_job = f" (job {job.name})" if job is not None else ""
    log.error("%s failed%s: %s", where(photo), in_job, detail,
              extra=fields(photo.watch, job.name if job else None, photo.rel_path))


def job_step_failed(ctx: Context, job: Job, exc: BaseException, doing: str) -> Outcome:
    """Given a job step (create, queue) that raised `exc`, do what the table says; return the outcome.

    A permanent refusal fails the job and every photo waiting on it, naming
    each file; a passing fault defers only this job (and, for Studio trouble,
    Studio work), so another watch's jobs keep flowing.
    """
    rule = classify(exc)
    outcome = rule.outcome
    detail = f"{doing} job {job.name} failed: {_describe(exc)}"
    if outcome in (Outcome.FAIL_ITEM, Outcome.LOOK_AGAIN, Outcome.SUPERSEDE):
        fail_job(ctx, job, f"{doing} job {job.name} failed: {rule.meaning}: {_describe(exc)}")
        return Outcome.FAIL_ITEM
    if outcome is Outcome.PAUSE_CREDITS:
        ctx.credits.out_of_credits(getattr(exc, "message", str(exc)))
    elif outcome is Outcome.BACK_OFF_STUDIO:
        ctx.health.trouble(exc)
    waiting = ctx.ledger.photos_in_state(*WAITING_ON_JOB, job_id=job.id)
    for photo in waiting:
        if photo.trouble_since is None:
            ctx.ledger.update_photo(photo.id, trouble_since=ctx.clock())
    if waiting and all(over_budget(ctx, p) for p in waiting):
        fail_job(ctx, job, f"{detail}; still failing after {ctx.give_up_seconds / 3600:.0f} h of passing faults")
        return Outcome.FAIL_ITEM
    wait = ctx.deferrals.defer(("job", job.id), getattr(exc, "retry_after", None))
    if outcome is Outcome.RETRY_LATER and not isinstance(exc, (StudioError, OSError)):
        log.exception("%s: unexpected error while %s job %s; trying again in %.0f s", job.watch, doing,
                      job.name, wait)
    return outcome


def fail_job(ctx: Context, job: Job, detail: str) -> None:
    """Fail a job for good and every photo still waiting on it, each with a reason naming its file."""
    with ctx.ledger.transaction():
        for photo in ctx.ledger.photos_in_state(*WAITING_ON_JOB, job_id=job.id):
            ctx.ledger.update_photo(photo.id, state="failed", reason=f"{where(photo)}: {detail}",
                                    trouble_since=None)
        ctx.ledger.update_job(job.id, state="failed", reason=detail, finished_at=ctx.clock())
    ctx.deferrals.clear(("job", job.id))
    log.error("%s: %s; its photos are marked failed (skylab-watch retry sends them again)", job.watch, detail,
              extra=fields(job.watch, job.name))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        name = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{name}"
    return str(exc) or type(exc).__name__
