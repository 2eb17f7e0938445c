"""The ledger: typed queries over photos, jobs, outputs and notices.

The only module besides `db` and `schema` that writes SQL. Every method that
changes state runs in one transaction; callers that need several changes to
land together wrap them in `ledger.transaction()`. SQLite's errors leave as
the ledger's own (`LedgerError`, `NameTaken` for a unique name already taken).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterable

from skylab_watch.ledger.db import Database
from skylab_watch.ledger.records import Alert, Job, Output, Photo, StateCount, from_row
from skylab_watch.ledger.schedule import ScheduleQueries
from skylab_watch.ledger.schema import MIGRATIONS
from skylab_watch.ledger.states import (
    JOB_COLLECTING_STATES, SENT_STATES, JobState, PhotoState, check_job_move, check_photo_move,
)

_PHOTO_COLUMNS = frozenset(Photo.__dataclass_fields__) - {"id"}
_JOB_COLUMNS = frozenset(Job.__dataclass_fields__) - {"id"}


class Ledger(ScheduleQueries):
    """The record of every file and job. Open one per process; share it between threads."""

    def __init__(self, path: str | Path, check_filesystem: bool = True) -> None:
        self.db = Database(Path(path), MIGRATIONS, check_filesystem=check_filesystem)
        self.path = self.db.path
        self.transaction = self.db.transaction

    def close(self) -> None:
        """Close the underlying database."""
        self.db.close()

    def lock_use(self) -> tuple[int, int, float]:
        """Return (times the ledger's lock was taken, times a user waited for it, seconds waited) so far."""
        return self.db.lock_use()

    # ------------------------------------------------------------------ photos

    def get_photo(self, photo_id: int) -> Photo | None:
        """Return the photo row with this id."""
        return from_row(Photo, self.db.query_one("SELECT * FROM photos WHERE id = ?", (photo_id,)))

    def reread_photo(self, photo: Photo) -> Photo:
        """Return the current row of a photo the caller holds (photo rows are never deleted)."""
        current = self.get_photo(photo.id)
        assert current is not None, f"photo row {photo.id} vanished"
        return current

    def latest_version(self, watch: str, rel_path: str) -> Photo | None:
        """Return the newest version recorded for a file, or None if never seen."""
        row = self.db.query_one(
            "SELECT * FROM photos WHERE watch = ? AND rel_path = ? ORDER BY version DESC LIMIT 1",
            (watch, rel_path))
        return from_row(Photo, row)

    def known_files(self, watch: str) -> dict[str, tuple[int, int]]:
        """Return {rel_path: (size, mtime_ns)} of the newest version of every file of a watch.

        One query, so that a start-up scan over tens of thousands of files
        compares against memory, not against the database file by file.
        """
        rows = self.db.query(
            "SELECT rel_path, size, mtime_ns FROM photos p WHERE watch = ? AND version = "
            "(SELECT MAX(version) FROM photos q WHERE q.watch = p.watch AND q.rel_path = p.rel_path)",
            (watch,))
        return {r["rel_path"]: (r["size"], r["mtime_ns"]) for r in rows}

    def add_photo(self, watch: str, rel_path: str, size: int, mtime_ns: int, md5: str, state: str,
                  reason: str | None = None, width: int | None = None, height: int | None = None,
                  duplicate_of: int | None = None, upload_path: str | None = None,
                  device: int | None = None, inode: int | None = None) -> Photo:
        """Record a new version of a file; an older version not yet sent is marked superseded."""
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT MAX(version) FROM photos WHERE watch = ? AND rel_path = ?",
                               (watch, rel_path)).fetchone()
            version = (row[0] or 0) + 1
            replaced = [r[0] for r in conn.execute(
                "SELECT id FROM photos WHERE watch = ? AND rel_path = ? AND state IN ('ready', 'batched') "
                "AND studio_id IS NULL", (watch, rel_path))]
            for old_id in replaced:
                conn.execute("UPDATE photos SET state = 'superseded', reason = ?, updated_at = ? WHERE id = ?",
                             (f"replaced by a newer version of the file (version {version})", now, old_id))
                _release_duplicates(conn, old_id, now)
            cur = conn.execute(
                "INSERT INTO photos (watch, rel_path, version, size, mtime_ns, md5, width, height, state, "
                "reason, duplicate_of, upload_path, found_at, updated_at, device, inode) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (watch, rel_path, version, size, mtime_ns, md5, width, height, state, reason,
                 duplicate_of, upload_path, now, now, device, inode))
            return from_row(Photo, conn.execute("SELECT * FROM photos WHERE id = ?", (cur.lastrowid,)).fetchone())

    def find_sent_content(self, watch: str, md5: str, exclude_path: str | None = None) -> Photo | None:
        """Return a photo of this watch with the same content that is sent, being sent, or about to be."""
        states = (PhotoState.READY, *SENT_STATES)
        marks = ",".join("?" * len(states))
        row = self.db.query_one(
            f"SELECT * FROM photos WHERE watch = ? AND md5 = ? AND state IN ({marks}) "
            "AND rel_path IS NOT ? ORDER BY id LIMIT 1", (watch, md5, *states, exclude_path))
        return from_row(Photo, row)

    def update_photo(self, photo_id: int, **changes: Any) -> None:
        """Change columns of one photo (state, reason, studio_id, ...).

        A photo that ends superseded or failed releases the copies recorded
        as its duplicates: their content was never delivered after all.
        """
        if changes.get("state") == PhotoState.DELIVERED:
            changes.setdefault("delivered_at", time.time())
        with self.transaction() as conn:
            self._update("photos", _PHOTO_COLUMNS, photo_id, changes, check_photo_move)
            if changes.get("state") in (PhotoState.SUPERSEDED, PhotoState.FAILED):
                _release_duplicates(conn, photo_id, time.time())

    def claim_photo(self, photo_id: int, expected: tuple[str, ...], state: str, **changes: Any) -> bool:
        """Move a photo to `state` only if it is still in one of `expected`; return True if it was.

        A worker claims its photo this way so that a change made meanwhile
        by another thread (a newer version superseding it) is never undone.
        """
        for old in expected:
            check_photo_move(old, state)
        sets = ", ".join(f"{col} = ?" for col in ("state", *changes, "updated_at"))
        marks = ",".join("?" * len(expected))
        cur = self.db.execute(f"UPDATE photos SET {sets} WHERE id = ? AND state IN ({marks})",
                              (state, *changes.values(), time.time(), photo_id, *expected))
        return cur.rowcount == 1

    def photos_in_state(self, *states: str, watch: str | None = None, job_id: int | None = None) -> list[Photo]:
        """Return photos in any of `states`, oldest first, optionally of one watch or job."""
        sql = f"SELECT * FROM photos WHERE state IN ({','.join('?' * len(states))})"
        params: list[Any] = list(states)
        if watch is not None:
            sql += " AND watch = ?"
            params.append(watch)
        if job_id is not None:
            sql += " AND job_id = ?"
            params.append(job_id)
        return [from_row(Photo, r) for r in self.db.query(sql + " ORDER BY id", params)]

    def photo_heads_in_state(self, *states: str) -> list[tuple[int, str, int | None]]:
        """Return (id, watch, job_id) of the photos in any of `states`, oldest first: what a pass needs to
        choose among many photos before it reads the few it picks whole (`photos_by_id`)."""
        marks = ",".join("?" * len(states))
        return [(r[0], r[1], r[2]) for r in self.db.query(
            f"SELECT id, watch, job_id FROM photos WHERE state IN ({marks}) ORDER BY id", states)]

    def photos_by_id(self, ids: list[int]) -> list[Photo]:
        """Return the photos with these ids, in the order given (ids not found are left out)."""
        if not ids:
            return []
        found = {r["id"]: from_row(Photo, r) for r in self.db.query(
            f"SELECT * FROM photos WHERE id IN ({','.join('?' * len(ids))})", ids)}
        return [found[i] for i in ids if i in found]

    def job_photos_all_in(self, job_id: int, *states: str) -> bool:
        """Return True if every photo of the job is in one of `states` (one indexed look, no rows read back)."""
        marks = ",".join("?" * len(states))
        return self.db.query_one(f"SELECT 1 FROM photos WHERE job_id = ? AND state NOT IN ({marks}) LIMIT 1",
                                 (job_id, *states)) is None

    def has_photos_in_state(self, *states: str) -> bool:
        """Return True if any photo is in one of `states` (one indexed look, no rows read back)."""
        marks = ",".join("?" * len(states))
        return self.db.query_one(f"SELECT 1 FROM photos WHERE state IN ({marks}) LIMIT 1", states) is not None

    def photos_of_job(self, job_id: int) -> list[Photo]:
        """Return every photo assigned to a job."""
        return [from_row(Photo, r) for r in self.db.query(
            "SELECT * FROM photos WHERE job_id = ? ORDER BY id", (job_id,))]

    def studio_names_in_job(self, job_id: int) -> set[str]:
        """Return the photo names already used inside a job."""
        return {r[0] for r in self.db.query(
            "SELECT studio_name FROM photos WHERE job_id = ? AND studio_name IS NOT NULL", (job_id,))}

    # ------------------------------------------------------------------ jobs

    def get_job(self, job_id: int) -> Job | None:
        """Return the job row with this id."""
        return from_row(Job, self.db.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,)))

    def reserve_job(self, watch: str, name: str, profile_id: int) -> Job:
        """Record a new open job under its unique name, before Studio hears of it."""
        now = time.time()
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO jobs (watch, name, state, profile_id, opened_at, last_added_at, updated_at) "
                "VALUES (?, ?, 'open', ?, ?, ?, ?)", (watch, name, profile_id, now, now, now))
            return from_row(Job, conn.execute("SELECT * FROM jobs WHERE id = ?", (cur.lastrowid,)).fetchone())

    def jobs_in_state(self, *states: str, watch: str | None = None) -> list[Job]:
        """Return jobs in any of `states`, oldest first."""
        sql = f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(states))})"
        params: list[Any] = list(states)
        if watch is not None:
            sql += " AND watch = ?"
            params.append(watch)
        return [from_row(Job, r) for r in self.db.query(sql + " ORDER BY id", params)]

    def collecting_jobs(self, watch: str | None = None) -> list[Job]:
        """Return the jobs still taking photos (not closed; not yet, or already, at Studio), oldest first."""
        return [job for job in self.jobs_in_state(*JOB_COLLECTING_STATES, watch=watch) if job.closed_at is None]

    def update_job(self, job_id: int, **changes: Any) -> None:
        """Change columns of one job; a change of state must be one `states.JOB_MOVES` lists.

        A job that becomes `closed` gets its `closed_at` (now, unless given): a job without one
        still takes photos once it is created (`collecting_jobs`).
        """
        if changes.get("state") == JobState.CLOSED:
            changes.setdefault("closed_at", time.time())
        self._update("jobs", _JOB_COLUMNS, job_id, changes, check_job_move)

    def add_to_job(self, photo_id: int, job_id: int, studio_name: str) -> None:
        """Put a ready photo into an open job under its unique name in that job."""
        now = time.time()
        with self.transaction() as conn:
            _check_current(conn, "photos", photo_id, PhotoState.BATCHED, check_photo_move)
            conn.execute("UPDATE photos SET state = 'batched', job_id = ?, studio_name = ?, reason = NULL, "
                         "updated_at = ? WHERE id = ?", (job_id, studio_name, now, photo_id))
            conn.execute("UPDATE jobs SET last_added_at = ?, updated_at = ? WHERE id = ?", (now, now, job_id))

    def count_job_photos(self, job_id: int) -> int:
        """Return how many photos a job holds."""
        row = self.db.query_one("SELECT COUNT(*) FROM photos WHERE job_id = ?", (job_id,))
        assert row is not None, "COUNT(*) always returns one row"
        return row[0]

    # ------------------------------------------------------------------ outputs

    def record_output(self, photo_id: int, path: str, size: int, sha256: str) -> None:
        """Record (or re-record) a file written for a photo."""
        self.db.execute(
            "INSERT INTO outputs (photo_id, path, size, sha256, written_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (photo_id, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, "
            "written_at = excluded.written_at", (photo_id, path, size, sha256, time.time()))

    def outputs_of(self, photo_id: int) -> list[Output]:
        """Return the files written for one photo."""
        return [from_row(Output, r) for r in self.db.query(
            "SELECT * FROM outputs WHERE photo_id = ? ORDER BY id", (photo_id,))]

    def output_owner(self, path: str) -> Output | None:
        """Return the newest output record at `path` (a file the daemon wrote), or None."""
        return from_row(Output, self.db.query_one(
            "SELECT * FROM outputs WHERE path = ? ORDER BY id DESC LIMIT 1", (path,)))

    # ------------------------------------------------------------------ notices

    def set_notice(self, key: str, message: str) -> bool:
        """Record a daemon-wide condition (paused watch, no credits); return True if it is new.

        A new condition also opens a row in notice_history, which the morning report reads.
        """
        now = time.time()
        with self.transaction() as conn:
            old = conn.execute("SELECT message FROM notices WHERE key = ?", (key,)).fetchone()
            if old is not None and old[0] == message:
                return False
            conn.execute("INSERT INTO notices (key, message, since) VALUES (?, ?, ?) ON CONFLICT (key) "
                         "DO UPDATE SET message = excluded.message", (key, message, now))
            if old is None:
                conn.execute("INSERT INTO notice_history (key, message, raised_at) VALUES (?, ?, ?)",
                             (key, message, now))
            return old is None

    def clear_notice(self, key: str) -> bool:
        """Forget a condition; return True if it was set (its history row is closed)."""
        with self.transaction() as conn:
            if conn.execute("DELETE FROM notices WHERE key = ?", (key,)).rowcount == 0:
                return False
            conn.execute("UPDATE notice_history SET cleared_at = ? WHERE key = ? AND cleared_at IS NULL",
                         (time.time(), key))
            return True

    def notice_history(self, since: float) -> list[tuple[str, str, float, float | None]]:
        """Return (key, message, raised_at, cleared_at) of notices raised, or still open, since `since`."""
        rows = self.db.query("SELECT key, message, raised_at, cleared_at FROM notice_history "
                             "WHERE raised_at >= ? OR cleared_at IS NULL OR cleared_at >= ? ORDER BY id",
                             (since, since))
        return [(r["key"], r["message"], r["raised_at"], r["cleared_at"]) for r in rows]

    def notices(self) -> dict[str, tuple[str, float]]:
        """Return {key: (message, since)} of every current condition."""
        return {r["key"]: (r["message"], r["since"]) for r in self.db.query("SELECT * FROM notices")}

    # ------------------------------------------------------------------ callback replays

    def first_sight_of_callback(self, signature: str, now: float, keep_seconds: float) -> bool:
        """Remember a callback's signature; False if it was seen before (a replay), even before a restart.

        Signatures older than `keep_seconds` are forgotten: the receiver refuses a callback whose
        timestamp is that old anyway, so the table stays as small as the replay window.
        """
        with self.transaction() as conn:
            conn.execute("DELETE FROM callback_replays WHERE seen_at < ?", (now - keep_seconds,))
            cur = conn.execute("INSERT OR IGNORE INTO callback_replays (signature, seen_at) VALUES (?, ?)",
                               (signature, now))
            return cur.rowcount == 1

    # ------------------------------------------------------------------ alerts and pauses (issue 12: notify)

    def add_alert(self, event: str, title: str, body: str, now: float) -> int:
        """Put an alert in the outbox, due at once; return its id. One INSERT: cheap on the work loop."""
        cur = self.db.execute("INSERT INTO alerts (event, title, body, created_at, next_try_at) "
                              "VALUES (?, ?, ?, ?, ?)", (event, title, body, now, now))
        return int(cur.lastrowid or 0)

    def alerts_due(self, now: float, limit: int = 20) -> list[Alert]:
        """Return unsent alerts whose next try is due, oldest first."""
        return [from_row(Alert, r) for r in self.db.query(
            "SELECT * FROM alerts WHERE sent_at IS NULL AND next_try_at <= ? ORDER BY id LIMIT ?", (now, limit))]

    def alerts(self, since: float = 0.0) -> list[Alert]:
        """Return every alert created since `since`, sent or not, oldest first."""
        return [from_row(Alert, r) for r in self.db.query(
            "SELECT * FROM alerts WHERE created_at >= ? ORDER BY id", (since,))]

    def alert_sent(self, alert_id: int, now: float) -> None:
        """Record that every notifier that wants the alert took it."""
        self.db.execute("UPDATE alerts SET sent_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                        (now, alert_id))

    def alert_failed(self, alert_id: int, error: str, next_try_at: float) -> None:
        """Record a failed delivery attempt and when to try again."""
        self.db.execute("UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_try_at = ? WHERE id = ?",
                        (error, next_try_at, alert_id))

    def last_alert_at(self, event: str) -> float | None:
        """Return when the newest alert of `event` was created, or None if there never was one."""
        row = self.db.query_one("SELECT MAX(created_at) FROM alerts WHERE event = ?", (event,))
        return None if row is None else row[0]

    def failed_since(self, since: float, until: float) -> list[Photo]:
        """Return photos that are failed and were last changed in (since, until], oldest first."""
        return [from_row(Photo, r) for r in self.db.query(
            "SELECT * FROM photos WHERE state = ? AND updated_at > ? AND updated_at <= ? ORDER BY updated_at, id",
            (PhotoState.FAILED, since, until))]

    def finished_job_durations(self, limit: int) -> list[float]:
        """Return how long (queued to finished, seconds) each of the newest `limit` delivered jobs took at Studio."""
        rows = self.db.query("SELECT finished_at - queued_at FROM jobs WHERE state = 'delivered' AND "
                             "queued_at IS NOT NULL AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?",
                             (limit,))
        return [float(r[0]) for r in rows]

    def pause_watch(self, watch: str, reason: str, now: float) -> bool:
        """Pause a watch by hand; return False if it already was (its reason and since are kept)."""
        cur = self.db.execute("INSERT OR IGNORE INTO paused_watches (watch, reason, since) VALUES (?, ?, ?)",
                              (watch, reason, now))
        return cur.rowcount == 1

    def resume_watch(self, watch: str) -> bool:
        """Lift a pause made by hand; return False if the watch was not paused."""
        return self.db.execute("DELETE FROM paused_watches WHERE watch = ?", (watch,)).rowcount == 1

    def paused_by_hand(self) -> dict[str, tuple[str, float]]:
        """Return {watch: (reason, since)} of every watch paused with `skylab-watch pause`."""
        return {r["watch"]: (r["reason"], r["since"]) for r in self.db.query("SELECT * FROM paused_watches")}

    # ------------------------------------------------------------------ reports

    def state_counts(self) -> dict[str, dict[str, int]]:
        """Return {watch: {state: count}} over the newest version of every file."""
        rows = self.db.query("SELECT watch, state, COUNT(*) AS n FROM photos GROUP BY watch, state")
        counts: dict[str, dict[str, int]] = {}
        for r in rows:
            counts.setdefault(r["watch"], {})[r["state"]] = r["n"]
        return counts

    def count_jobs_by_state(self) -> dict[str, int]:
        """Return {state: number of jobs} over every job the ledger holds (for /metrics)."""
        return {r["state"]: r["n"] for r in self.db.query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")}

    def count_photos_by_state(self) -> list[StateCount]:
        """Return how many photos each watch has in each state, split by their job's Studio status.

        Every version is counted (superseded ones too); the status report
        decides what each state means to a person.
        """
        rows = self.db.query(
            "SELECT p.watch, p.state, j.studio_status, COUNT(*) AS n FROM photos p "
            "LEFT JOIN jobs j ON j.id = p.job_id GROUP BY p.watch, p.state, j.studio_status "
            "ORDER BY p.watch, p.state")
        return [StateCount(r["watch"], r["state"], r["studio_status"], r["n"]) for r in rows]

    # ------------------------------------------------------------------ morning report (issue 12)

    def photos_seen_between(self, since: float, until: float) -> list[Photo]:
        """Return every photo found, delivered or changed between `since` and `until`, oldest first.

        The report decides what each one counts as; one query keeps a night's
        report to one read of the photos table.
        """
        rows = self.db.query(
            "SELECT * FROM photos WHERE found_at BETWEEN ? AND ? OR updated_at BETWEEN ? AND ? "
            "OR delivered_at BETWEEN ? AND ? ORDER BY id", (since, until) * 3)
        return [from_row(Photo, r) for r in rows]

    def jobs_opened_between(self, since: float, until: float) -> list[Job]:
        """Return the jobs whose name was reserved between `since` and `until`, oldest first."""
        rows = self.db.query("SELECT * FROM jobs WHERE opened_at BETWEEN ? AND ? ORDER BY id", (since, until))
        return [from_row(Job, r) for r in rows]

    def _update(self, table: str, allowed: Iterable[str], row_id: int, changes: dict[str, Any],
                check: Callable[[str, str], None]) -> None:
        """Change columns of one row; a change of state is checked against the move table first."""
        unknown = set(changes) - set(allowed)
        if unknown:
            raise ValueError(f"unknown {table} columns: {sorted(unknown)}")
        changes = {**changes, "updated_at": time.time()}
        assignments = ", ".join(f"{col} = ?" for col in changes)
        with self.transaction() as conn:
            if "state" in changes:
                _check_current(conn, table, row_id, changes["state"], check)
            conn.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", (*changes.values(), row_id))


def _check_current(conn: Any, table: str, row_id: int, new: str, check: Callable[[str, str], None]) -> None:
    """Raise IllegalTransition unless the row's current state may become `new` (a missing row is left alone)."""
    row = conn.execute(f"SELECT state FROM {table} WHERE id = ?", (row_id,)).fetchone()
    if row is not None:
        check(row[0], new)


def _release_duplicates(conn, photo_id: int, now: float) -> None:
    """Send again the copies that were held back as duplicates of a photo that will not be delivered."""
    conn.execute("UPDATE photos SET state = 'ready', duplicate_of = NULL, reason = NULL, updated_at = ? "
                 "WHERE duplicate_of = ? AND state = 'duplicate'", (now, photo_id))
