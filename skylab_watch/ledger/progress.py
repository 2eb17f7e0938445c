"""The figures of the live view (`skylab_watch.live`), read in one small query each.

The view refreshes a few times a second for as long as the daemon runs, on a
ledger that keeps every photo it ever saw; so neither query scans the whole
photos table. Work still in progress is found through the state index (it is
few rows); what finished during this run through the row id, from the
lowest id that was still at work when the run began: rows older than that
finished before the run and are not this run's news.
"""

from __future__ import annotations

from dataclasses import dataclass

from skylab_watch.ledger.ledger import Ledger
from skylab_watch.ledger.states import PhotoState as P

__all__ = ["IN_PROGRESS", "FINISHED", "ProgressCount", "first_row_of_run", "progress_counts"]

IN_PROGRESS = (P.READY, P.BATCHED, P.UPLOADING, P.UPLOADED, P.QUEUED, P.DELIVERING)
"""Photo states of work still ahead (a delivered photo's outputs are written: it counts as delivered)."""
FINISHED = (P.DELIVERED, P.DONE, P.REJECTED, P.DUPLICATE, P.FAILED)
"""Photo states whose count since the start of the run the view shows."""

_MARKS = ", ".join("?" * len(IN_PROGRESS))
_DONE_MARKS = ", ".join("?" * len(FINISHED))
_COUNTS = (
    "SELECT p.watch, p.state, j.studio_status, MIN(j.jobs_in_front) AS front, COUNT(*) AS n, MIN(p.id) AS low "
    "FROM photos p LEFT JOIN jobs j ON j.id = p.job_id "
    f"WHERE p.state IN ({_MARKS}) GROUP BY p.watch, p.state, j.studio_status "
    "UNION ALL "
    "SELECT p.watch, p.state, NULL, NULL, COUNT(*), MIN(p.id) FROM photos p NOT INDEXED "
    f"WHERE p.id >= ? AND p.updated_at >= ? AND p.state IN ({_DONE_MARKS}) GROUP BY p.watch, p.state")
# NOT INDEXED keeps SQLite from walking the state index over every photo ever done: the id range is the short way.


@dataclass(frozen=True)
class ProgressCount:
    """How many photos of a watch are in one state (for work in progress: split by the job's Studio status).

    jobs_in_front: the fewest jobs Studio last said were ahead of one of these
    photos' jobs (None when unknown or not at Studio); lowest_id: the oldest row.
    """

    watch: str
    state: str
    studio_status: str | None
    jobs_in_front: int | None
    count: int
    lowest_id: int


def first_row_of_run(ledger: Ledger) -> int:
    """Return the lowest photo id this run may move: the oldest row still at work, else the next new row."""
    row = ledger.db.query_one(
        f"SELECT MIN(id) AS low, (SELECT MAX(id) FROM photos) AS high FROM photos WHERE state IN ({_MARKS})",
        [s.value for s in IN_PROGRESS])
    if row is None or row["low"] is None:
        return (row["high"] if row is not None and row["high"] is not None else 0) + 1
    return int(row["low"])


def progress_counts(ledger: Ledger, since: float, from_id: int) -> list[ProgressCount]:
    """Given the start of the run (a time and `first_row_of_run`), return the counts the view shows.

    Work in progress is counted whenever it was found; finished photos only
    when they changed since `since` (delivered, failed, rejected this run).
    """
    params = [*(s.value for s in IN_PROGRESS), from_id, since, *(s.value for s in FINISHED)]
    return [ProgressCount(r["watch"], r["state"], r["studio_status"], r["front"], r["n"], r["low"])
            for r in ledger.db.query(_COUNTS, params)]
