"""How a queued job moves through its statuses, computed from timestamps.

A job queued at `t` is `queued` until `t + P/3`, `processing` until `t + P`
(P = processing seconds), then `completed` (or `failed` when a fault chose
so). Photos marked `withheld` never get a retouchedUrl and keep their job in
`processing`. Because status is a function of the clock, evaluating it lazily
on each request and from a ticker thread gives the same answer, and a
restarted emulator continues where it stopped.
"""

from __future__ import annotations

from skylab_watch.emulator.state import AccountState, Job

TERMINAL = frozenset({"completed", "failed", "cancelled"})
ACTIVE = frozenset({"queued", "processing"})


def status_at(job: Job, now: float, processing_seconds: float, withheld: bool) -> str:
    """Given a queued job and the clock, return the status it has reached."""
    assert job.queued_at is not None
    elapsed = now - job.queued_at
    if elapsed < processing_seconds / 3:
        return "queued"
    if elapsed < processing_seconds:
        return "processing"
    if job.will_fail:
        return "failed"
    return "processing" if withheld else "completed"


def _advance_job(state: AccountState, job: Job, now: float, processing_seconds: float) -> bool:
    """Move one active job forward; return True if anything changed."""
    photos = state.job_photos(job.id)
    status = status_at(job, now, processing_seconds, any(p.withheld for p in photos))
    changed = status != job.status
    job.status = status
    done_processing = job.queued_at is not None and now - job.queued_at >= processing_seconds
    if done_processing and not job.will_fail:
        for photo in photos:
            if not photo.withheld and not photo.retouched:
                photo.retouched = changed = True
    if status in TERMINAL and job.completed_at is None:
        job.completed_at = job.queued_at + processing_seconds if job.queued_at else now
    return changed


def advance_jobs(state: AccountState, now: float, processing_seconds: float) -> list[int]:
    """Advance every active job; return ids of finished jobs whose callback is due.

    A returned job is marked `notified`, so each callback is sent once. The
    caller must hold `state.lock`; the state is saved only if it changed.
    """
    changed = False
    for job in state.jobs.values():
        if job.status in ACTIVE:
            changed |= _advance_job(state, job, now, processing_seconds)
    due = [j.id for j in state.jobs.values()
           if j.status in TERMINAL and j.callback_url and not j.notified]
    for job_id in due:
        state.jobs[job_id].notified = True
    if changed or due:
        state.save()
    return due


def jobs_in_front(state: AccountState, job: Job) -> int:
    """Return how many active jobs were queued before `job` (all, if it is not queued)."""
    return sum(
        1 for other in state.jobs.values()
        if other.id != job.id and other.status in ACTIVE and other.queued_at is not None
        and (job.queued_at is None or (other.queued_at, other.id) < (job.queued_at, job.id))
    )
