"""Acting on the outcome table: every stage reports a failed step here.

`outcomes.TABLE` says what an error means; this module does it to a photo or
a job: defer it with backoff (starting its give-up clock), pause Studio work,
close the credit gate, fail it with a reason that names the watch and the
file. Keeping the doing in one place is what makes "a passing fault never
costs a photo" true for every stage at once.
"""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

from skylab_watch.ledger import Job, JobState, Photo, PhotoState
from skylab_watch.ledger.states import WAITING_ON_JOB
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.outcomes import LOOK_AGAIN_TRIES, Outcome, Rule, classify
from skylab_watch.studio import InvalidRequestError, ServerError, StudioError, TransportError

T = TypeVar("T")

log = logging.getLogger("skylab_watch")



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
        _count_retry(ctx, "photo", doing, rule)
        log.warning("%s: %s; trying again after a fresh look", where(photo), detail,
                    extra=fields(photo.watch, photo=photo.rel_path))
        return outcome
    _pause(ctx, photo, outcome, exc)
    if over_budget(ctx, ctx.ledger.get_photo(photo.id) or photo):
        fail_photo(ctx, photo, f"{detail}; {_budget_spent(ctx)}", job)
        return Outcome.FAIL_ITEM
    wait = ctx.deferrals.defer(key, getattr(exc, "retry_after", None))
    _count_retry(ctx, "photo", doing, rule)
    _log_retry(exc, outcome, where(photo), doing, wait, fields(photo.watch, photo=photo.rel_path))
    return outcome


def apply_daemon_wide(ctx: Context, outcome: Outcome, exc: BaseException) -> None:
    """Do the daemon-wide side of an outcome: close the credit gate, or hold Studio work back."""
    if outcome is Outcome.PAUSE_CREDITS:
        ctx.credits.out_of_credits(getattr(exc, "message", str(exc)))
    elif outcome is Outcome.BACK_OFF_STUDIO:
        ctx.health.trouble(exc)


def _pause(ctx: Context, photo: Photo, outcome: Outcome, exc: BaseException) -> None:
    """Apply the daemon-wide (or, for the output disk, watch-wide) side of a transient outcome."""
    apply_daemon_wide(ctx, outcome, exc)
    if outcome is Outcome.PAUSE_OUTPUT:
        watch = photo.watch
        output = ctx.watch(watch).output if ctx.has_watch(watch) else "?"
        message = f"cannot write outputs to {output}: {_describe(exc)}; will try again"
        if ctx.ledger.set_notice(output_notice(watch), message):
            log.error("%s: %s (first seen with %s)", watch, message, photo.rel_path)


def output_notice(watch: str) -> str:
    """Return the key of a watch's "cannot write outputs" notice."""
    return f"output:{watch}"


def over_budget(ctx: Context, photo: Photo) -> bool:
    """Start the photo's give-up clock if it is not running; return True once it has run past
    `retry.give_up_after_hours`. `photo` must be the row as the ledger holds it now."""
    since = photo.trouble_since
    if since is None:
        since = ctx.clock()
        ctx.ledger.update_photo(photo.id, trouble_since=since)
    return ctx.clock() - since > ctx.give_up_seconds


def _count_retry(ctx: Context, item: str, doing: str, rule: Rule) -> None:
    """Count one deferral of an `item` ("photo", "job") in `skylab_watch_retries_total`, labelled by the
    stage and by the outcome and kind of the table's row, so a dashboard names what keeps failing."""
    ctx.telemetry.record_retry(item, doing, rule.outcome.value, rule.kind)


def _log_retry(exc: BaseException, outcome: Outcome, subject: str, doing: str, wait: float,
               extra: dict[str, str] | None = None) -> None:
    """Log a deferred step; an error the table does not know by kind is a bug, logged with its traceback."""
    if outcome is not Outcome.RETRY_LATER:
        return
    if isinstance(exc, (StudioError, OSError)):
        log.info("%s: %s failed: %s; trying again in %.0f s", subject, doing, _describe(exc), wait, extra=extra)
    else:
        log.error("%s: unexpected error while %s; trying again in %.0f s", subject, doing, wait, exc_info=exc,
                  extra=extra)


def step_succeeded(ctx: Context, photo: Photo) -> None:
    """A photo's step went through: forget its backoff (its trouble clock is reset with its new state)."""
    ctx.deferrals.clear(("photo", photo.id))


def fail_photo(ctx: Context, photo: Photo, detail: str, job: Job | None = None) -> None:
    """Mark a photo failed for good, with a reason naming watch and file; `retry` sends it again."""
    reason = f"{where(photo)}: {detail}"
    ctx.ledger.update_photo(photo.id, state=PhotoState.FAILED, reason=reason, trouble_since=None)
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
    apply_daemon_wide(ctx, outcome, exc)
    waiting = ctx.ledger.photos_in_state(*WAITING_ON_JOB, job_id=job.id)
    spent = [over_budget(ctx, p) for p in waiting]  # a list, not a generator: every clock is started
    if waiting and all(spent):
        fail_job(ctx, job, f"{detail}; {_budget_spent(ctx)}")
        return Outcome.FAIL_ITEM
    wait = ctx.deferrals.defer(("job", job.id), getattr(exc, "retry_after", None))
    _count_retry(ctx, "job", doing, rule)
    _log_retry(exc, outcome, f"{job.watch}: job {job.name}", doing, wait, fields(job.watch, job.name))
    return outcome


def fail_job(ctx: Context, job: Job, detail: str) -> None:
    """Fail a job for good and every photo still waiting on it, each with a reason naming its file."""
    with ctx.ledger.transaction():
        for photo in ctx.ledger.photos_in_state(*WAITING_ON_JOB, job_id=job.id):
            ctx.ledger.update_photo(photo.id, state=PhotoState.FAILED, reason=f"{where(photo)}: {detail}",
                                    trouble_since=None)
        ctx.ledger.update_job(job.id, state=JobState.FAILED, reason=detail, finished_at=ctx.clock())
    ctx.deferrals.clear(("job", job.id))
    log.error("%s: %s; its photos are marked failed (skylab-watch retry sends them again)", job.watch, detail,
              extra=fields(job.watch, job.name))


def _budget_spent(ctx: Context) -> str:
    return f"still failing after {ctx.give_up_seconds / 3600:.0f} h of passing faults"


def create_or_adopt(create: Callable[[], T], find: Callable[[], T | None], what: str) -> T:
    """Create a Studio record whose create call may have acted although its answer was lost.

    After a 5xx, a dropped connection or a refusal (422: name taken), look the
    record up; adopt it if it is there. If it is absent after an ambiguous
    failure, create it now; after a refusal, the refusal stands. Never two.
    """
    try:
        return create()
    except (InvalidRequestError, ServerError, TransportError) as exc:
        found = find()
        if found is not None:
            return found
        if isinstance(exc, InvalidRequestError):
            raise
        log.info("%s not found after an unclear answer (%s); creating it", what, exc)
        return create()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        name = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{name}"
    return str(exc) or type(exc).__name__
