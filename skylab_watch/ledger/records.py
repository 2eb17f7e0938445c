"""Typed rows of the ledger: what the rest of the program sees instead of sqlite3.Row."""

from __future__ import annotations

import functools
import sqlite3
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Photo:
    """One version of one file in a watch."""

    id: int
    watch: str
    rel_path: str
    version: int
    size: int
    mtime_ns: int
    md5: str
    width: int | None
    height: int | None
    state: str
    reason: str | None
    duplicate_of: int | None
    job_id: int | None
    studio_name: str | None
    studio_id: int | None
    upload_path: str | None
    attempts: int
    found_at: float
    updated_at: float
    trouble_since: float | None = None
    device: int | None = None
    inode: int | None = None
    delivered_at: float | None = None

    def require_studio_id(self) -> int:
        """Studio's id of a photo the caller knows has a Studio record; TypeError (a bug) if it has none."""
        if self.studio_id is None:
            raise TypeError(f"photo {self.rel_path} has no Studio id yet")
        return int(self.studio_id)


@dataclass(frozen=True)
class Job:
    """One Studio job, from the moment its name is reserved."""

    id: int
    watch: str
    name: str
    state: str
    profile_id: int | None
    studio_id: int | None
    reason: str | None
    jobs_in_front: int | None
    studio_status: str | None
    opened_at: float
    last_added_at: float
    closed_at: float | None
    queued_at: float | None
    finished_at: float | None
    updated_at: float
    studio_type: str | None = None

    def require_studio_id(self) -> int:
        """Studio's id of a job the caller knows was created there; TypeError (a bug) if it was not."""
        if self.studio_id is None:
            raise TypeError(f"job {self.name} has no Studio id yet")
        return int(self.studio_id)

    def require_profile_id(self) -> int:
        """The profile id, which every job is opened with; TypeError (a bug) if it is missing."""
        if self.profile_id is None:
            raise TypeError(f"job {self.name} has no profile id")
        return int(self.profile_id)


@dataclass(frozen=True)
class Output:
    """One file the daemon wrote for a photo."""

    id: int
    photo_id: int
    path: str
    size: int
    sha256: str
    written_at: float


@dataclass(frozen=True)
class StateCount:
    """How many photos of a watch are in one state, with the Studio status of their job (None if none)."""

    watch: str
    state: str
    studio_status: str | None
    count: int


def from_row(cls, row: sqlite3.Row | None):
    """Given a row of the matching table, return the record (None stays None)."""
    if row is None:
        return None
    return cls(*[row[name] for name in _field_names(cls)])


@functools.cache
def _field_names(cls) -> tuple[str, ...]:
    """The record's field names in order (dataclasses.fields is slow enough to show when the loop reads
    thousands of rows a minute)."""
    return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class Alert:
    """One message in the alert outbox: written by the work loop, delivered later by the sender thread."""

    id: int
    event: str
    title: str
    body: str
    created_at: float
    attempts: int
    next_try_at: float
    last_error: str | None
    sent_at: float | None
    html: str | None = None
    """The same message as HTML, for notifiers that take HTML (the morning report); None: body only."""
