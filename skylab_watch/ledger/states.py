"""The states of a photo and of a job, as names, with the one table of moves between them.

A state is a `str` enum, so the ledger stores the same words as before and a
row read back compares equal to its member. The ledger refuses any change of
state the tables below do not list (`IllegalTransition`): a move nobody
planned is a bug to see, not a row to write. Staying in the same state is
always allowed, because every step may be redone after a crash.

`REPORT_CATEGORY` is the one mapping from a photo's state to what a person is
shown (`status`, the systemd status line, `run --once`'s summary).
"""

from __future__ import annotations

from enum import Enum

from skylab_watch.errors import LedgerError


class PhotoState(str, Enum):
    """The life of one version of one file (architecture.md, "Life of a photo")."""

    READY = "ready"              # validated, waiting for a job
    REJECTED = "rejected"        # not a photo Studio accepts; the reason says why
    DUPLICATE = "duplicate"      # the same content as a photo already sent
    SUPERSEDED = "superseded"    # a newer version of the file replaced it
    BATCHED = "batched"          # in a job, not yet sent
    UPLOADING = "uploading"      # intent: a record may exist at Studio, bytes may be on their way
    UPLOADED = "uploaded"        # our PUT went through
    QUEUED = "queued"            # its job is queued at Studio
    DELIVERING = "delivering"    # intent: outputs are being written
    DELIVERED = "delivered"      # outputs on disk; the original is not yet kept, archived or deleted
    DONE = "done"                # outputs on disk and the original handled
    FAILED = "failed"            # for good, with the reason; `retry` sends it again

    def __str__(self) -> str:
        return self.value


class JobState(str, Enum):
    """The life of one Studio job, from the moment its name is reserved."""

    OPEN = "open"                # collecting photos; not sent to Studio yet
    CLOSED = "closed"            # full or due; never sent to Studio yet
    CREATING = "creating"        # intent: a create call may have reached Studio (collecting while closed_at is unset)
    CREATED = "created"          # Studio's id recorded; photos are uploaded into it (and join it until closed_at)
    QUEUEING = "queueing"        # intent: the queue call may have reached Studio
    QUEUED = "queued"            # processing at Studio
    DELIVERED = "delivered"      # every photo's outputs written (or failed)
    FAILED = "failed"            # refused, deleted or failed at Studio; its photos failed with it
    DELETED = "deleted"          # none of its photos could be uploaded: deleted at Studio
    COMPLETED = "completed"      # written by early versions only; read, never written
    CANCELLED = "cancelled"      # written by early versions only; read, never written

    def __str__(self) -> str:
        return self.value


P, J = PhotoState, JobState

# The states a photo is first recorded in.
PHOTO_START = frozenset({P.READY, P.REJECTED, P.DUPLICATE})

PHOTO_MOVES: dict[PhotoState, frozenset[PhotoState]] = {
    P.READY: frozenset({P.BATCHED, P.SUPERSEDED}),
    P.DUPLICATE: frozenset({P.READY}),                        # its twin was not delivered after all
    P.BATCHED: frozenset({P.UPLOADING, P.SUPERSEDED, P.FAILED}),
    P.UPLOADING: frozenset({P.UPLOADED, P.SUPERSEDED, P.FAILED}),
    P.UPLOADED: frozenset({P.QUEUED, P.FAILED}),
    P.QUEUED: frozenset({P.DELIVERING, P.FAILED}),
    P.DELIVERING: frozenset({P.DELIVERED, P.FAILED}),
    P.DELIVERED: frozenset({P.DONE, P.FAILED}),
    P.FAILED: frozenset({P.READY}),                           # `skylab-watch retry`
    P.REJECTED: frozenset(),                                  # a changed file is a new version (a new row)
    P.SUPERSEDED: frozenset(),
    P.DONE: frozenset(),
}

JOB_MOVES: dict[JobState, frozenset[JobState]] = {
    J.OPEN: frozenset({J.CLOSED, J.CREATING, J.CREATED, J.FAILED}),  # created as soon as its first photo joins
    J.CLOSED: frozenset({J.CREATING, J.CREATED, J.FAILED}),
    J.CREATING: frozenset({J.CREATED, J.FAILED}),
    J.CREATED: frozenset({J.QUEUEING, J.DELETED, J.FAILED}),
    J.QUEUEING: frozenset({J.QUEUED, J.DELETED, J.FAILED}),
    J.QUEUED: frozenset({J.DELIVERED, J.FAILED}),
    J.DELIVERED: frozenset(),
    J.FAILED: frozenset(),
    J.DELETED: frozenset(),
    J.COMPLETED: frozenset(),
    J.CANCELLED: frozenset(),
}

# Photo states in which the content has been, or is being, sent: it counts as "already sent".
SENT_STATES = (P.BATCHED, P.UPLOADING, P.UPLOADED, P.QUEUED, P.DELIVERING, P.DELIVERED, P.DONE)
# Photo states a photo never leaves without a person or a new version.
FINAL_STATES = (P.REJECTED, P.DUPLICATE, P.SUPERSEDED, P.DONE, P.FAILED)
# Photo states in which a photo is still on its way.
ACTIVE_STATES = (P.READY, P.BATCHED, P.UPLOADING, P.UPLOADED, P.QUEUED, P.DELIVERING, P.DELIVERED)
# Photo states of a photo whose job is at Studio: waiting for its result, or being delivered.
AT_STUDIO_STATES = (P.QUEUED, P.DELIVERING, P.DELIVERED)
# Photo states from which an upload may (again) be tried.
UPLOADABLE_STATES = (P.BATCHED, P.UPLOADING)
# Photo states in which a photo still waits on its job (a job-level failure ends them).
WAITING_ON_JOB = (P.BATCHED, P.UPLOADING, P.UPLOADED, P.QUEUED, P.DELIVERING)
# Job states in which a job still takes photos, as long as its closed_at is unset (streaming ingest:
# a job is created at Studio while it collects, so uploads start before the batch closes).
JOB_COLLECTING_STATES = (J.OPEN, J.CREATING, J.CREATED)
# Job states after which Studio no longer works on the job.
JOB_FINISHED_STATES = (J.COMPLETED, J.FAILED, J.CANCELLED, J.DELIVERED, J.DELETED)
# Job states in which the job still has work ahead of it.
JOB_OPEN_STATES = (J.OPEN, J.CLOSED, J.CREATING, J.CREATED, J.QUEUEING, J.QUEUED)

# What a person is shown for each photo state; None: history, not work (superseded versions).
REPORT_CATEGORY: dict[PhotoState, str | None] = {
    P.READY: "waiting", P.BATCHED: "waiting",
    P.UPLOADING: "uploading", P.UPLOADED: "uploading",
    P.QUEUED: "queued", P.DELIVERING: "processing", P.DELIVERED: "done", P.DONE: "done",
    P.REJECTED: "rejected", P.DUPLICATE: "duplicate", P.FAILED: "failed", P.SUPERSEDED: None,
}
REPORT_CATEGORIES = ("waiting", "uploading", "queued", "processing", "done", "rejected", "duplicate", "failed")


class IllegalTransition(LedgerError):
    """A change of state the tables do not list: a bug in the caller. Nothing was written."""


def check_photo_move(old: str, new: str) -> None:
    """Raise IllegalTransition unless a photo may go from `old` to `new`."""
    _check(PhotoState(old), PhotoState(new), PHOTO_MOVES, "photo")


def check_job_move(old: str, new: str) -> None:
    """Raise IllegalTransition unless a job may go from `old` to `new`."""
    _check(JobState(old), JobState(new), JOB_MOVES, "job")


def _check(old: Enum, new: Enum, moves: dict, what: str) -> None:
    if new != old and new not in moves[old]:
        raise IllegalTransition(f"a {what} cannot go from {old.value} to {new.value}")
