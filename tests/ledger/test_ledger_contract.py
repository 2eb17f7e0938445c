"""The ledger's contract: every public query method, its typed errors, and every migration.

Each test uses a real SQLite file in tmp_path. The migration tests build a
ledger at each old schema version from that version's DDL, written out here
(not taken from the code, which only knows how to reach the newest), and
check it reaches the current schema with its rows intact. A new migration
must add the DDL of the version it starts from to SCHEMA_AT.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from skylab_watch.ledger import Ledger, LedgerError, NameTaken, StateCount
from skylab_watch.ledger.schema import MIGRATIONS

V1_DDL = """
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY, watch TEXT NOT NULL, name TEXT NOT NULL UNIQUE, state TEXT NOT NULL,
    profile_id INTEGER, studio_id INTEGER, reason TEXT, jobs_in_front INTEGER, studio_status TEXT,
    opened_at REAL NOT NULL, last_added_at REAL NOT NULL, closed_at REAL, queued_at REAL,
    finished_at REAL, updated_at REAL NOT NULL);
CREATE INDEX jobs_by_state ON jobs (state, watch);
CREATE TABLE photos (
    id INTEGER PRIMARY KEY, watch TEXT NOT NULL, rel_path TEXT NOT NULL, version INTEGER NOT NULL,
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, md5 TEXT NOT NULL, width INTEGER, height INTEGER,
    state TEXT NOT NULL, reason TEXT, duplicate_of INTEGER REFERENCES photos (id),
    job_id INTEGER REFERENCES jobs (id), studio_name TEXT, studio_id INTEGER, upload_path TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, found_at REAL NOT NULL, updated_at REAL NOT NULL,
    UNIQUE (watch, rel_path, version), UNIQUE (job_id, studio_name));
CREATE INDEX photos_by_state ON photos (state, watch);
CREATE INDEX photos_by_job ON photos (job_id);
CREATE INDEX photos_by_md5 ON photos (watch, md5);
CREATE TABLE outputs (
    id INTEGER PRIMARY KEY, photo_id INTEGER NOT NULL REFERENCES photos (id), path TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, written_at REAL NOT NULL, UNIQUE (photo_id, path));
CREATE INDEX outputs_by_path ON outputs (path);
CREATE TABLE notices (key TEXT PRIMARY KEY, message TEXT NOT NULL, since REAL NOT NULL);
"""

V2_DDL = (V1_DDL.replace("finished_at REAL, updated_at REAL NOT NULL);",
                          "finished_at REAL, updated_at REAL NOT NULL, studio_type TEXT);")
          .replace("found_at REAL NOT NULL, updated_at REAL NOT NULL,\n    UNIQUE",
                   "found_at REAL NOT NULL, updated_at REAL NOT NULL, trouble_since REAL,\n    UNIQUE"))

V3_DDL = (V2_DDL.replace("trouble_since REAL,\n    UNIQUE",
                         "trouble_since REAL, device INTEGER, inode INTEGER,\n    UNIQUE")
          + "CREATE TABLE callback_replays (signature TEXT PRIMARY KEY, seen_at REAL NOT NULL);\n")

V4_DDL = (V3_DDL.replace("device INTEGER, inode INTEGER,\n    UNIQUE",
                         "device INTEGER, inode INTEGER, delivered_at REAL,\n    UNIQUE")
          + """CREATE TABLE notice_history (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL, message TEXT NOT NULL, raised_at REAL NOT NULL, cleared_at REAL);
CREATE INDEX notice_history_by_time ON notice_history (raised_at);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY, event TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, next_try_at REAL NOT NULL, last_error TEXT, sent_at REAL);
CREATE INDEX alerts_unsent ON alerts (sent_at, next_try_at);
CREATE TABLE paused_watches (watch TEXT PRIMARY KEY, reason TEXT NOT NULL, since REAL NOT NULL);
""")

V5_DDL = (V4_DDL.replace("last_error TEXT, sent_at REAL);", "last_error TEXT, sent_at REAL, html TEXT);")
          + "CREATE TABLE schedule (name TEXT PRIMARY KEY, last_day TEXT NOT NULL, last_run REAL NOT NULL);\n")

# The DDL of every schema version: 0 is a new, empty file.
SCHEMA_AT = {0: "", 1: V1_DDL, 2: V2_DDL, 3: V3_DDL, 4: V4_DDL, 5: V5_DDL}

# Rows written into a ledger of each old version, to check a migration keeps them.
ROWS_AT = {
    0: "",
    1: """
INSERT INTO jobs (id, watch, name, state, opened_at, last_added_at, updated_at)
    VALUES (1, 'w', 'w-old-job', 'queued', 1, 1, 1);
INSERT INTO photos (id, watch, rel_path, version, size, mtime_ns, md5, state, job_id, studio_name,
                    found_at, updated_at)
    VALUES (1, 'w', 'a.jpg', 1, 10, 20, 'md5a', 'queued', 1, 'a.jpg', 1, 1);
INSERT INTO outputs (photo_id, path, size, sha256, written_at) VALUES (1, '/out/a.jpg', 5, 'sha', 1);
INSERT INTO notices (key, message, since) VALUES ('credits', 'out of credits', 1);
""",
}
ROWS_AT[2] = ROWS_AT[1]
ROWS_AT[3] = ROWS_AT[1]
ROWS_AT[4] = ROWS_AT[1] + """
INSERT INTO alerts (event, title, body, created_at, next_try_at) VALUES ('credits', 'out', 'body', 1, 1);
INSERT INTO paused_watches (watch, reason, since) VALUES ('w', 'by hand', 1);
"""
ROWS_AT[5] = ROWS_AT[4] + """
INSERT INTO schedule (name, last_day, last_run) VALUES ('report', '2026-11-25', 1);
"""


@pytest.fixture
def ledger(tmp_path: Path):
    opened = Ledger(tmp_path / "ledger.sqlite3")
    yield opened
    opened.close()


def _photo(ledger: Ledger, rel_path: str = "a.jpg", state: str = "ready", md5: str = "m", **extra):
    return ledger.add_photo("w", rel_path, 10, 20, md5, state, **extra)


def _schema(path: Path) -> list[tuple[str, str, str]]:
    """Return (type, name, sql with spacing normalised) of every table and index of a SQLite file."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                            "ORDER BY name").fetchall()
    finally:
        conn.close()
    return [(kind, name, _normalise(sql)) for kind, name, sql in rows]


def _normalise(sql: str) -> str:
    text = " ".join(sql.replace("IF NOT EXISTS ", "").split())
    return text.replace("( ", "(").replace(" )", ")").replace(" ,", ",")


def _at_version(path: Path, version: int) -> Path:
    """Write a ledger file at schema `version`, from its DDL, holding that version's sample rows."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_AT[version] + ROWS_AT[version])
    conn.execute(f"PRAGMA user_version={version}")
    conn.commit()
    conn.close()
    return path


# --- migrations ---------------------------------------------------------------------

def test_every_schema_version_has_its_ddl_and_sample_rows_recorded_here() -> None:
    assert sorted(SCHEMA_AT) == sorted(ROWS_AT) == list(range(len(MIGRATIONS) + 1))


def test_a_new_ledger_has_the_schema_recorded_for_the_current_version(tmp_path: Path) -> None:
    Ledger(tmp_path / "new.sqlite3").close()
    _at_version(tmp_path / "recorded.sqlite3", len(MIGRATIONS))
    assert _schema(tmp_path / "new.sqlite3") == _schema(tmp_path / "recorded.sqlite3")


@pytest.mark.parametrize("version", range(len(MIGRATIONS)))
def test_a_ledger_at_each_old_version_migrates_to_the_current_schema_keeping_its_rows(tmp_path, version) -> None:
    old = _at_version(tmp_path / "old.sqlite3", version)
    Ledger(tmp_path / "new.sqlite3").close()
    ledger = Ledger(old)
    try:
        assert ledger.db.query_one("PRAGMA user_version")[0] == len(MIGRATIONS)
        if version >= 1:
            assert ledger.get_photo(1).rel_path == "a.jpg" and ledger.get_job(1).name == "w-old-job"
            assert [o.path for o in ledger.outputs_of(1)] == ["/out/a.jpg"]
            assert ledger.notices()["credits"][0] == "out of credits"
        if version >= 4:
            (alert,) = ledger.alerts()
            assert alert.title == "out" and alert.html is None, "an alert of v4 keeps its body, without HTML"
    finally:
        ledger.close()
    assert _schema(old) == _schema(tmp_path / "new.sqlite3")


def test_reopening_a_current_ledger_applies_no_migration(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    Ledger(path).close()
    before = _schema(path)
    Ledger(path).close()
    assert _schema(path) == before


# --- photos ---------------------------------------------------------------------------

def test_add_photo_numbers_versions_and_get_photo_returns_the_row(ledger: Ledger) -> None:
    first = _photo(ledger, width=640, height=480)
    assert (first.version, first.state, first.width, first.attempts) == (1, "ready", 640, 0)
    assert ledger.get_photo(first.id) == first
    assert ledger.get_photo(first.id + 100) is None


def test_latest_version_and_known_files_see_only_the_newest_version(ledger: Ledger) -> None:
    _photo(ledger, md5="one")
    newest = ledger.add_photo("w", "a.jpg", 11, 21, "two", "ready")
    _photo(ledger, "b.jpg")
    assert ledger.latest_version("w", "a.jpg") == newest
    assert ledger.latest_version("w", "missing.jpg") is None
    assert ledger.known_files("w") == {"a.jpg": (11, 21), "b.jpg": (10, 20)}
    assert ledger.known_files("other") == {}


def test_find_sent_content_matches_ready_or_sent_photos_of_the_same_watch_elsewhere(ledger: Ledger) -> None:
    sent = _photo(ledger, "a.jpg", state="queued", md5="same")
    _photo(ledger, "b.jpg", state="rejected", md5="other")
    assert ledger.find_sent_content("w", "same") == sent
    assert ledger.find_sent_content("w", "same", exclude_path="a.jpg") is None
    assert ledger.find_sent_content("w", "other") is None, "a rejected photo was never sent"
    assert ledger.find_sent_content("elsewhere", "same") is None


def test_update_photo_changes_columns_and_refuses_unknown_ones(ledger: Ledger) -> None:
    photo = _photo(ledger, state="batched")
    ledger.update_photo(photo.id, state="failed", reason="no luck", attempts=3)
    changed = ledger.get_photo(photo.id)
    assert (changed.state, changed.reason, changed.attempts) == ("failed", "no luck", 3)
    assert changed.updated_at >= photo.updated_at
    with pytest.raises(ValueError, match="unknown photos columns"):
        ledger.update_photo(photo.id, colour="red")


def test_claim_photo_moves_only_a_photo_still_in_an_expected_state(ledger: Ledger) -> None:
    photo = _photo(ledger, state="batched")
    assert ledger.claim_photo(photo.id, ("batched",), "uploading", upload_path="/tmp/x") is True
    assert ledger.get_photo(photo.id).upload_path == "/tmp/x"
    assert ledger.claim_photo(photo.id, ("batched",), "uploading") is False
    assert ledger.get_photo(photo.id).state == "uploading"


def test_photos_in_state_filters_by_state_watch_and_job_oldest_first(ledger: Ledger) -> None:
    job = ledger.reserve_job("w", "w-job", 1)
    a = _photo(ledger, "a.jpg")
    b = _photo(ledger, "b.jpg", state="failed")
    c = ledger.add_photo("v", "c.jpg", 1, 1, "c", "ready")
    ledger.add_to_job(a.id, job.id, "a.jpg")
    assert [p.id for p in ledger.photos_in_state("ready", "failed")] == [b.id, c.id]
    assert [p.id for p in ledger.photos_in_state("ready", watch="v")] == [c.id]
    assert [p.id for p in ledger.photos_in_state("batched", job_id=job.id)] == [a.id]


def test_photos_of_job_names_in_job_and_count_follow_add_to_job(ledger: Ledger) -> None:
    job = ledger.reserve_job("w", "w-job", 1)
    photos = [_photo(ledger, f"{n}.jpg") for n in ("a", "b")]
    for photo in photos:
        ledger.add_to_job(photo.id, job.id, photo.rel_path.upper())
    assert [p.id for p in ledger.photos_of_job(job.id)] == [p.id for p in photos]
    assert ledger.studio_names_in_job(job.id) == {"A.JPG", "B.JPG"}
    assert ledger.count_job_photos(job.id) == 2
    assert {p.state for p in ledger.photos_of_job(job.id)} == {"batched"}


def test_photo_heads_photos_by_id_and_job_photos_all_in(ledger: Ledger) -> None:
    job = ledger.reserve_job("w", "w-job", 1)
    a, b, c = (_photo(ledger, f"{n}.jpg") for n in ("a", "b", "c"))
    for photo in (a, b):
        ledger.add_to_job(photo.id, job.id, photo.rel_path)
    assert ledger.photo_heads_in_state("batched", "ready") == [(a.id, "w", job.id), (b.id, "w", job.id),
                                                               (c.id, "w", None)]
    assert [p.id for p in ledger.photos_by_id([c.id, a.id, 999])] == [c.id, a.id], "in the order asked"
    assert ledger.photos_by_id([]) == []
    assert not ledger.job_photos_all_in(job.id, "uploaded", "failed")
    ledger.update_photo(a.id, state="uploading")
    ledger.update_photo(a.id, state="uploaded")
    assert not ledger.job_photos_all_in(job.id, "uploaded", "failed")
    ledger.update_photo(b.id, state="failed")
    assert ledger.job_photos_all_in(job.id, "uploaded", "failed")


def test_a_studio_name_taken_in_a_job_is_refused_as_name_taken(ledger: Ledger) -> None:
    job = ledger.reserve_job("w", "w-job", 1)
    first, second = _photo(ledger, "a.jpg"), _photo(ledger, "b.jpg")
    ledger.add_to_job(first.id, job.id, "same.jpg")
    with pytest.raises(NameTaken, match="already records that name"):
        ledger.add_to_job(second.id, job.id, "same.jpg")
    assert ledger.get_photo(second.id).state == "ready", "nothing of the refused change was written"


# --- jobs -------------------------------------------------------------------------------

def test_reserve_job_records_an_open_job_and_a_name_twice_is_name_taken(ledger: Ledger) -> None:
    job = ledger.reserve_job("w", "w-20260101-0000-abcd", 42)
    assert (job.state, job.profile_id, job.studio_id) == ("open", 42, None)
    assert ledger.get_job(job.id) == job and ledger.get_job(job.id + 1) is None
    with pytest.raises(NameTaken) as info:
        ledger.reserve_job("w", "w-20260101-0000-abcd", 42)
    assert isinstance(info.value, LedgerError)
    assert len(ledger.jobs_in_state("open")) == 1


def test_jobs_in_state_and_update_job(ledger: Ledger) -> None:
    a = ledger.reserve_job("w", "w-a", 1)
    b = ledger.reserve_job("v", "v-b", 1)
    for state in ("closed", "created", "queueing"):  # the moves the ledger allows
        ledger.update_job(a.id, state=state)
    ledger.update_job(a.id, state="queued", studio_id=7, jobs_in_front=3)
    assert [j.id for j in ledger.jobs_in_state("open", "queued")] == [a.id, b.id]
    assert [j.id for j in ledger.jobs_in_state("open", watch="v")] == [b.id]
    assert (ledger.get_job(a.id).studio_id, ledger.get_job(a.id).jobs_in_front) == (7, 3)
    with pytest.raises(ValueError, match="unknown jobs columns"):
        ledger.update_job(a.id, colour="red")


# --- outputs ------------------------------------------------------------------------------

def test_record_output_re_records_in_place_and_output_owner_finds_the_newest(ledger: Ledger) -> None:
    first, second = _photo(ledger, "a.jpg"), _photo(ledger, "b.jpg")
    ledger.record_output(first.id, "/out/x.jpg", 1, "sha1")
    ledger.record_output(first.id, "/out/x.jpg", 2, "sha2")
    assert [(o.path, o.size, o.sha256) for o in ledger.outputs_of(first.id)] == [("/out/x.jpg", 2, "sha2")]
    ledger.record_output(second.id, "/out/x.jpg", 3, "sha3")
    assert ledger.output_owner("/out/x.jpg").photo_id == second.id
    assert ledger.output_owner("/out/none.jpg") is None
    assert ledger.outputs_of(second.id + 1) == []


# --- notices --------------------------------------------------------------------------------

def test_notices_are_set_once_changed_in_place_and_cleared(ledger: Ledger) -> None:
    assert ledger.set_notice("paused:w", "input missing") is True
    assert ledger.set_notice("paused:w", "input missing") is False
    since = ledger.notices()["paused:w"][1]
    assert ledger.set_notice("paused:w", "input unreadable") is False, "a change is not a new condition"
    assert ledger.notices() == {"paused:w": ("input unreadable", since)}
    assert ledger.clear_notice("paused:w") is True
    assert ledger.clear_notice("paused:w") is False
    assert ledger.notices() == {}


# --- reports -----------------------------------------------------------------------------------

def test_state_counts_and_count_photos_by_state_split_by_watch_and_studio_status(ledger: Ledger) -> None:
    job = ledger.reserve_job("w", "w-job", 1)
    queued = _photo(ledger, "a.jpg")
    ledger.add_to_job(queued.id, job.id, "a.jpg")
    for state in ("uploading", "uploaded", "queued"):  # the moves the ledger allows
        ledger.update_photo(queued.id, state=state)
    ledger.update_job(job.id, studio_status="processing")
    _photo(ledger, "b.jpg")
    _photo(ledger, "c.jpg")
    ledger.add_photo("v", "d.jpg", 1, 1, "d", "failed")
    assert ledger.state_counts() == {"w": {"queued": 1, "ready": 2}, "v": {"failed": 1}}
    assert ledger.count_photos_by_state() == [
        StateCount("v", "failed", None, 1), StateCount("w", "queued", "processing", 1),
        StateCount("w", "ready", None, 2)]


# --- transactions and errors ---------------------------------------------------------------------

def test_nested_transactions_land_together_or_not_at_all(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError):
        with ledger.transaction():
            _photo(ledger, "a.jpg")
            with ledger.transaction():
                _photo(ledger, "b.jpg")
            raise RuntimeError("crash after the inner block")
    assert ledger.known_files("w") == {}
    with ledger.transaction():
        _photo(ledger, "a.jpg")
        with ledger.transaction():
            _photo(ledger, "b.jpg")
    assert set(ledger.known_files("w")) == {"a.jpg", "b.jpg"}


def test_a_name_taken_inside_an_outer_transaction_rolls_back_all_of_it(ledger: Ledger) -> None:
    ledger.reserve_job("w", "w-taken", 1)
    with pytest.raises(NameTaken):
        with ledger.transaction():
            _photo(ledger, "a.jpg")
            ledger.reserve_job("w", "w-taken", 1)
    assert ledger.latest_version("w", "a.jpg") is None
    _photo(ledger, "a.jpg")  # the ledger is usable afterwards


def test_a_ledger_locked_by_another_writer_is_a_ledger_error_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)
    ledger.db.conn.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(LedgerError, match="locked by another process"):
            ledger.set_notice("k", "m")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert ledger.set_notice("k", "m") is True
    ledger.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever the mode bits say")
def test_a_read_only_ledger_is_a_ledger_error_naming_permissions(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    Ledger(path).close()
    path.chmod(0o444)
    try:
        with pytest.raises(LedgerError, match="owner and permissions"):
            ledger = Ledger(path)
            ledger.set_notice("k", "m")
    finally:
        path.chmod(0o644)


def test_a_file_that_is_not_a_ledger_is_refused_with_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    path.write_bytes(b"this is not an SQLite file, and is bigger than its header" * 4)
    with pytest.raises(LedgerError, match="cannot open the ledger"):
        Ledger(path)


def test_threads_share_one_ledger_without_losing_a_write(ledger: Ledger) -> None:
    def add(n: int) -> None:
        for i in range(20):
            ledger.add_photo("w", f"t{n}-{i}.jpg", 1, 1, f"m{n}-{i}", "ready")

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(ledger.known_files("w")) == 80


def test_a_callback_signature_is_accepted_once_even_after_the_ledger_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    first = Ledger(path)
    assert first.first_sight_of_callback("sig-a", now=1000.0, keep_seconds=300) is True
    assert first.first_sight_of_callback("sig-a", now=1001.0, keep_seconds=300) is False
    first.close()
    again = Ledger(path)
    try:
        assert again.first_sight_of_callback("sig-a", now=1002.0, keep_seconds=300) is False
        # Past the replay window the signature is forgotten (the receiver refuses such old callbacks anyway).
        assert again.first_sight_of_callback("sig-a", now=2000.0, keep_seconds=300) is True
    finally:
        again.close()


def test_a_notice_raised_and_cleared_stays_in_its_history(ledger: Ledger) -> None:
    before = time.time() - 1
    assert ledger.set_notice("credits", "out of credits") is True
    assert ledger.set_notice("credits", "out of credits") is False
    assert ledger.clear_notice("credits") is True
    assert ledger.clear_notice("credits") is False
    [(key, message, raised, cleared)] = ledger.notice_history(since=before)
    assert (key, message) == ("credits", "out of credits") and cleared is not None and cleared >= raised


def test_a_photo_moved_to_delivered_records_when(ledger: Ledger) -> None:
    photo = ledger.add_photo("w", "a.jpg", 1, 1, "m", "ready")
    assert photo.delivered_at is None
    for state in ("batched", "uploading", "uploaded", "queued", "delivering", "delivered"):
        ledger.update_photo(photo.id, state=state)
    assert ledger.get_photo(photo.id).delivered_at is not None


# --- daily schedule ----------------------------------------------------------------------

def test_a_day_is_claimed_once_with_its_alert_and_a_later_day_again(ledger: Ledger) -> None:
    assert ledger.last_day("report") is None
    assert ledger.claim_day("report", "2026-11-25", 1.0, ("report", "t", "text", "<p>html</p>")) is True
    assert ledger.claim_day("report", "2026-11-25", 2.0, ("report", "t2", "text", None)) is False
    assert ledger.claim_day("report", "2026-11-24", 3.0, None) is False, "an earlier day never goes back"
    assert [(a.title, a.html) for a in ledger.alerts()] == [("t", "<p>html</p>")]
    assert ledger.claim_day("report", "2026-11-26", 4.0, None) is True
    assert ledger.last_day("report") == "2026-11-26"
