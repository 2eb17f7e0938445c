"""Ordinary bad nights, run by the real daemon against the emulator: an outage, a share that
goes away, a result that will never come, credits that ran out before a restart. Time is
compressed through the daemon's backoff settings, never by sleeping."""

from __future__ import annotations

import shutil
import time

import pytest
from daemon_helpers import DaemonThread, compress_time, studio_photos, write_config
from support import make_image, plain_studio, wait_for



@pytest.fixture
def slow_emulator():
    """An emulator whose processing takes long enough to act while a job is at Studio."""
    with plain_studio(processing_seconds=2.0) as emu:
        yield emu


def _config(tmp_path, emu, **extra):
    watch = {"name": "w", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain", **extra}
    return write_config(tmp_path, emu.url, [watch])


def test_a_studio_outage_longer_than_any_retry_loses_no_photo(tmp_path, plain_emulator):
    cfg = _config(tmp_path, plain_emulator)
    with DaemonThread(cfg) as d:
        compress_time(d)
        plain_emulator.stop()
        for i in range(6):
            make_image(tmp_path / "in" / f"p{i}.jpg", seed=i)
        wait_for(lambda: d.daemon.ctx.health.troubled_since is not None, what="the daemon to meet the outage")
        wait_for(lambda: len(d.ledger.photos_in_state("batched", "uploading")) == 6, what="photos waiting")
        troubled = d.daemon.ctx.health.troubled_since
        wait_for(lambda: time.time() - troubled > 4, timeout=10,
                 what="an outage far longer than the client's own retries (3 tries, 0.2 s apart)")
        assert not d.ledger.photos_in_state("failed"), "an outage never costs a photo"
        plain_emulator.start()
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 6, timeout=40, what="every photo delivered")
        assert not d.ledger.photos_in_state("failed")
    assert sorted(p["name"] for p in studio_photos(plain_emulator)) == [f"p{i}.jpg" for i in range(6)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"p{i}.jpg" for i in range(6)]


@pytest.mark.parametrize("after_success", ["archive", "delete"])
def test_a_watch_folder_gone_for_a_while_fails_nothing_and_finishes_each_original_once(
        tmp_path, slow_emulator, after_success):
    extra = {"after_success": after_success}
    if after_success == "archive":
        extra["archive_dir"] = tmp_path / "archive"
    cfg = _config(tmp_path, slow_emulator, **extra)
    inp, away = tmp_path / "in", tmp_path / "unmounted"
    names = [f"p{i}.jpg" for i in range(4)]
    with DaemonThread(cfg) as d:
        compress_time(d)
        for i, name in enumerate(names):
            make_image(inp / name, seed=i)
        wait_for(lambda: len(d.ledger.photos_in_state("queued")) == 4, timeout=30, what="the job at Studio")
        shutil.move(str(inp), str(away))
        wait_for(lambda: "watch:w" in d.ledger.notices(), timeout=10, what="the pause")
        wait_for(lambda: len(d.ledger.photos_in_state("delivered")) == 4, timeout=30,
                 what="outputs written while the share is away")
        assert not d.ledger.photos_in_state("done", "failed"), "done only once the original is handled"
        shutil.move(str(away), str(inp))
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 4, timeout=30, what="originals finished")
        assert not d.ledger.photos_in_state("failed")
    assert list(inp.iterdir()) == [], "every original left the input"
    if after_success == "archive":
        assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == names, "archived exactly once"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == names


def test_a_result_that_answers_404_fails_its_photo_within_minutes_naming_watch_and_file(tmp_path, plain_emulator):
    cfg = _config(tmp_path, plain_emulator)
    plain_emulator.set_faults({"errors": {"GET store": {"status": 404}}})
    with DaemonThread(cfg) as d:
        compress_time(d)
        make_image(tmp_path / "in" / "shoot" / "IMG_1.jpg")
        failed = wait_for(lambda: d.ledger.photos_in_state("failed"), timeout=60, what="the photo to fail")
    assert failed[0].reason.startswith("w: shoot/IMG_1.jpg: delivery failed")
    assert "404" in failed[0].reason


def test_a_stale_credits_notice_is_cleared_by_the_next_success(tmp_path, plain_emulator):
    cfg = _config(tmp_path, plain_emulator)
    plain_emulator.set_faults({"out_of_credits": True})
    with DaemonThread(cfg) as d:
        make_image(tmp_path / "in" / "a.jpg", seed=1)
        wait_for(lambda: "credits" in d.ledger.notices(), what="the credits notice")
    plain_emulator.set_faults({"out_of_credits": False})
    with DaemonThread(cfg) as d:  # a restart: the new process never saw the 402 itself
        assert "credits" in d.ledger.notices()
        make_image(tmp_path / "in" / "b.jpg", seed=2)
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 2, timeout=30, what="both photos delivered")
        wait_for(lambda: "credits" not in d.ledger.notices(), timeout=5, what="the stale notice to clear")
