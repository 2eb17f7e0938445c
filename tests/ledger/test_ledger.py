"""The ledger: durable settings, migrations, transactions, refusing network filesystems."""

from __future__ import annotations

import sqlite3

import pytest

from skylab_watch.errors import LedgerError
from skylab_watch.ledger import Ledger, filesystem_type, refuse_network_filesystem
from skylab_watch.ledger.schema import MIGRATIONS


def test_opens_in_wal_with_full_sync_and_records_its_schema_version(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    assert ledger.db.query_one("PRAGMA journal_mode")[0] == "wal"
    assert ledger.db.query_one("PRAGMA synchronous")[0] == 2  # FULL
    assert ledger.db.query_one("PRAGMA user_version")[0] == len(MIGRATIONS)
    ledger.close()


def test_a_ledger_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "l.sqlite3"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(LedgerError, match="newer skylab-watch"):
        Ledger(path)


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    with pytest.raises(RuntimeError):
        with ledger.transaction():
            ledger.add_photo("w", "a.jpg", 1, 1, "m1", "ready")
            raise RuntimeError("crash in the middle")
    assert ledger.latest_version("w", "a.jpg") is None


def test_a_new_version_supersedes_an_unsent_one_and_keeps_a_sent_one(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    first = ledger.add_photo("w", "a.jpg", 1, 1, "m1", "ready")
    second = ledger.add_photo("w", "a.jpg", 2, 2, "m2", "ready")
    assert ledger.get_photo(first.id).state == "superseded"
    for state in ("batched", "uploading", "uploaded", "queued"):  # the moves the ledger allows
        ledger.update_photo(second.id, state=state, studio_id=7)
    third = ledger.add_photo("w", "a.jpg", 3, 3, "m3", "ready")
    assert ledger.get_photo(second.id).state == "queued"
    assert (third.version, ledger.known_files("w")["a.jpg"]) == (3, (3, 3))


def test_ledger_on_a_network_filesystem_is_refused_with_the_reason(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\nnas:/export {tmp_path / 'share'} nfs4 rw 0 0\n")
    (tmp_path / "share").mkdir()
    assert filesystem_type(tmp_path / "share" / "x", str(mounts)) == "nfs4"
    assert filesystem_type(tmp_path / "local", str(mounts)) == "ext4"
    with pytest.raises(LedgerError, match="network filesystem"):
        refuse_network_filesystem(tmp_path / "share" / "ledger.sqlite3", str(mounts))
    refuse_network_filesystem(tmp_path / "local" / "ledger.sqlite3", str(mounts))


def test_an_unwritable_ledger_location_says_how_to_fix_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(LedgerError, match="cannot create the ledger folder"):
        Ledger(blocker / "ledger.sqlite3")


def test_duplicates_of_a_photo_that_will_never_be_delivered_are_sent_after_all(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    original = ledger.add_photo("w", "a.jpg", 1, 1, "same", "ready")
    assert ledger.find_sent_content("w", "same").id == original.id, "a ready photo already counts"
    copy = ledger.add_photo("w", "b.jpg", 1, 1, "same", "duplicate", duplicate_of=original.id)
    ledger.add_photo("w", "a.jpg", 2, 2, "edited", "ready")  # a.jpg edited before it was sent
    assert ledger.get_photo(original.id).state == "superseded"
    assert (ledger.get_photo(copy.id).state, ledger.get_photo(copy.id).duplicate_of) == ("ready", None)
    other = ledger.add_photo("w", "c.jpg", 1, 1, "x", "queued")
    twin = ledger.add_photo("w", "d.jpg", 1, 1, "x", "duplicate", duplicate_of=other.id)
    ledger.update_photo(other.id, state="failed", reason="job failed")
    assert ledger.get_photo(twin.id).state == "ready"


def test_has_photos_in_state_answers_for_any_of_the_states_given(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite3")
    try:
        assert not ledger.has_photos_in_state("ready", "queued")
        ledger.add_photo("w", "a.jpg", 10, 1, "m1", "ready")
        assert ledger.has_photos_in_state("queued", "ready")
        assert not ledger.has_photos_in_state("queued", "done")
    finally:
        ledger.close()
