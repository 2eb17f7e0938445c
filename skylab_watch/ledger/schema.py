"""The ledger's schema, as a list of named migrations applied in order.

A photo row is one *version* of one file: (watch, rel_path, version). A
re-shoot at the same path adds a row with the next version. A job row is
created with its unique name *before* Studio hears of it, so a crash
between "create" and "record" is recovered by looking the name up.

The states a photo and a job live through, and the moves allowed between
them, are `states.py`'s; the ledger refuses any other move.
"""

from __future__ import annotations

import sqlite3

from skylab_watch.ledger.db import Migration


def _initial(conn: sqlite3.Connection) -> None:
    _run_statements(conn, """
        CREATE TABLE IF NOT EXISTS jobs (
            id            INTEGER PRIMARY KEY,
            watch         TEXT NOT NULL,
            name          TEXT NOT NULL UNIQUE,
            state         TEXT NOT NULL,
            profile_id    INTEGER,
            studio_id     INTEGER,
            reason        TEXT,
            jobs_in_front INTEGER,
            studio_status TEXT,
            opened_at     REAL NOT NULL,
            last_added_at REAL NOT NULL,
            closed_at     REAL,
            queued_at     REAL,
            finished_at   REAL,
            updated_at    REAL NOT NULL
        );
        CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, watch);

        CREATE TABLE IF NOT EXISTS photos (
            id            INTEGER PRIMARY KEY,
            watch         TEXT NOT NULL,
            rel_path      TEXT NOT NULL,
            version       INTEGER NOT NULL,
            size          INTEGER NOT NULL,
            mtime_ns      INTEGER NOT NULL,
            md5           TEXT NOT NULL,
            width         INTEGER,
            height        INTEGER,
            state         TEXT NOT NULL,
            reason        TEXT,
            duplicate_of  INTEGER REFERENCES photos (id),
            job_id        INTEGER REFERENCES jobs (id),
            studio_name   TEXT,
            studio_id     INTEGER,
            upload_path   TEXT,
            attempts      INTEGER NOT NULL DEFAULT 0,
            found_at      REAL NOT NULL,
            updated_at    REAL NOT NULL,
            UNIQUE (watch, rel_path, version),
            UNIQUE (job_id, studio_name)
        );
        CREATE INDEX IF NOT EXISTS photos_by_state ON photos (state, watch);
        CREATE INDEX IF NOT EXISTS photos_by_job ON photos (job_id);
        CREATE INDEX IF NOT EXISTS photos_by_md5 ON photos (watch, md5);

        CREATE TABLE IF NOT EXISTS outputs (
            id            INTEGER PRIMARY KEY,
            photo_id      INTEGER NOT NULL REFERENCES photos (id),
            path          TEXT NOT NULL,
            size          INTEGER NOT NULL,
            sha256        TEXT NOT NULL,
            written_at    REAL NOT NULL,
            UNIQUE (photo_id, path)
        );
        CREATE INDEX IF NOT EXISTS outputs_by_path ON outputs (path);

        CREATE TABLE IF NOT EXISTS notices (
            key           TEXT PRIMARY KEY,
            message       TEXT NOT NULL,
            since         REAL NOT NULL
        );
    """)


def _run_statements(conn: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated DDL one statement at a time (executescript would commit the transaction)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _trouble_clock_and_job_type(conn: sqlite3.Connection) -> None:
    """photos.trouble_since: when the photo first met a passing fault in its current step (the give-up
    budget is counted from it, across restarts); jobs.studio_type: the job's `type` at Studio, which
    decides whether uploads carry the S3 tagging."""
    conn.execute("ALTER TABLE photos ADD COLUMN trouble_since REAL")
    conn.execute("ALTER TABLE jobs ADD COLUMN studio_type TEXT")


def _file_identity_and_callback_replays(conn: sqlite3.Connection) -> None:
    """photos.device/inode: which file was validated, so the upload reads that very file and not one
    swapped in since; callback_replays: signatures of callbacks already accepted, so a replay is refused
    even after a restart."""
    conn.execute("ALTER TABLE photos ADD COLUMN device INTEGER")
    conn.execute("ALTER TABLE photos ADD COLUMN inode INTEGER")
    _run_statements(conn, """
        CREATE TABLE IF NOT EXISTS callback_replays (
            signature     TEXT PRIMARY KEY,
            seen_at       REAL NOT NULL
        )
    """)


def _history_alerts_and_pauses(conn: sqlite3.Connection) -> None:
    """What the morning report and the alerts need: when each photo's outputs landed
    (photos.delivered_at), every notice raised and cleared (notice_history), alerts waiting for a notifier
    that may be down (alerts, an outbox), and watches paused by hand (paused_watches)."""
    conn.execute("ALTER TABLE photos ADD COLUMN delivered_at REAL")
    _run_statements(conn, """
        CREATE TABLE IF NOT EXISTS notice_history (
            id            INTEGER PRIMARY KEY,
            key           TEXT NOT NULL,
            message       TEXT NOT NULL,
            raised_at     REAL NOT NULL,
            cleared_at    REAL
        );
        CREATE INDEX IF NOT EXISTS notice_history_by_time ON notice_history (raised_at);

        CREATE TABLE IF NOT EXISTS alerts (
            id            INTEGER PRIMARY KEY,
            event         TEXT NOT NULL,
            title         TEXT NOT NULL,
            body          TEXT NOT NULL,
            created_at    REAL NOT NULL,
            attempts      INTEGER NOT NULL DEFAULT 0,
            next_try_at   REAL NOT NULL,
            last_error    TEXT,
            sent_at       REAL
        );
        CREATE INDEX IF NOT EXISTS alerts_unsent ON alerts (sent_at, next_try_at);

        CREATE TABLE IF NOT EXISTS paused_watches (
            watch         TEXT PRIMARY KEY,
            reason        TEXT NOT NULL,
            since         REAL NOT NULL
        )
    """)


def _alert_html_and_schedule(conn: sqlite3.Connection) -> None:
    """alerts.html: an HTML rendering sent instead of the body to notifiers that take HTML (the morning
    report); schedule: the last local day each daily task ran (the morning report), so it runs once a day
    even across restarts."""
    conn.execute("ALTER TABLE alerts ADD COLUMN html TEXT")
    _run_statements(conn, """
        CREATE TABLE IF NOT EXISTS schedule (
            name          TEXT PRIMARY KEY,
            last_day      TEXT NOT NULL,
            last_run      REAL NOT NULL
        )
    """)


MIGRATIONS: list[Migration] = [
    ("initial schema: jobs, photos, outputs, notices", _initial),
    ("photo trouble clock and job type", _trouble_clock_and_job_type),
    ("photo file identity and callback replay cache", _file_identity_and_callback_replays),
    ("delivery time, notice history, alert outbox, paused watches", _history_alerts_and_pauses),
    ("alert HTML part and daily schedule", _alert_html_and_schedule),
]
