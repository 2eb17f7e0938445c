"""Daemon behaviours around the edges: vanishing shares, oversized photos, files changing
mid-upload, `run --once` exit codes, and `status --json`."""

from __future__ import annotations

import json
import time
import shutil

import pytest
import pyvips
from support import API_KEY, make_image, wait_for
from daemon_helpers import DaemonThread, run_once, studio_photos, write_config

from skylab_watch.cli import main
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.uploader import upload_photo


@pytest.fixture
def emu(plain_emulator):
    return plain_emulator


def _one_watch(tmp_path, emu, **extra):
    watch = {"name": "w", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain", **extra}
    return write_config(tmp_path, emu.url, [watch])


def test_a_vanished_share_pauses_the_watch_and_it_resumes_when_back(tmp_path, emu, capsys):
    cfg = _one_watch(tmp_path, emu)
    inp = tmp_path / "in"
    with DaemonThread(cfg) as d:
        make_image(inp / "before.jpg", seed=1)
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=20, what="first photo")
        shutil.move(str(inp), str(tmp_path / "unmounted"))
        wait_for(lambda: "watch:w" in d.ledger.notices(), timeout=10, what="the pause")
        assert main(["status", "--config", str(cfg)]) == 0
        assert "paused" in capsys.readouterr().out
        assert d.thread.is_alive()
        assert len(d.ledger.photos_in_state("done")) == 1, "a vanished file changes nothing in the ledger"
        shutil.move(str(tmp_path / "unmounted"), str(inp))
        wait_for(lambda: "watch:w" not in d.ledger.notices(), timeout=10, what="the resume")
        make_image(inp / "after.jpg", seed=2)
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 2, timeout=20, what="work after resume")


def test_an_oversized_photo_is_sent_as_a_downscaled_copy_when_allowed(tmp_path, emu):
    cfg = _one_watch(tmp_path, emu, resize_oversized=True)
    with DaemonThread(cfg) as d:
        original = make_image(tmp_path / "in" / "pano.jpg", width=6600, height=200)
        before = original.read_bytes()
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=30, what="the panorama done")
    sent = studio_photos(emu)
    assert len(sent) == 1 and sent[0]["size"] != len(before)
    assert original.read_bytes() == before, "the original is untouched"
    out = pyvips.Image.new_from_file(str(tmp_path / "out" / "pano.jpg"))
    assert out.width <= 6400


def test_a_file_changed_after_hashing_is_never_sent_under_the_old_hash(tmp_path, emu):
    cfg = _one_watch(tmp_path, emu)
    with DaemonThread(cfg) as d:
        d.daemon.stop()
        d.thread.join(10)
        ctx: Context = d.daemon.ctx
        path = make_image(tmp_path / "in" / "a.jpg", seed=1)
        photo = ctx.ledger.add_photo("w", "a.jpg", 1, 1, "0" * 32, "ready")  # hash of older content
        job = ctx.ledger.reserve_job("w", "w-test-job", ctx.profiles["w"])
        ctx.ledger.add_to_job(photo.id, job.id, "a.jpg")
        remote = ctx.studio.create_job(job.name, ctx.profiles["w"])
        ctx.ledger.update_job(job.id, state="closed")
        ctx.ledger.update_job(job.id, state="created", studio_id=remote["id"])
        assert upload_photo(ctx, ctx.ledger.get_photo(photo.id)) == "superseded"
        assert ctx.studio.list_job_photos(job_id=remote["id"]) == []
        assert path.exists()


def test_run_once_exits_1_when_a_photo_failed_and_0_otherwise(tmp_path, emu):
    cfg = _one_watch(tmp_path, emu)
    make_image(tmp_path / "in" / "good.jpg")
    assert run_once(cfg) == 0
    emu.set_faults({"fail_jobs": ["w-*"]})
    make_image(tmp_path / "in" / "doomed.jpg", seed=3)
    assert run_once(cfg) == 1


def test_status_json_reports_counts_jobs_and_reasons(tmp_path, emu, capsys):
    cfg = _one_watch(tmp_path, emu)
    make_image(tmp_path / "in" / "ok.jpg")
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    assert run_once(cfg) == 3, "done, with a rejection"
    assert main(["status", "--config", str(cfg), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["watches"]["w"]["done"] == 1
    assert report["watches"]["w"]["rejected"] == 1
    assert report["problems"][0]["path"] == "empty.jpg" and "empty" in report["problems"][0]["reason"]


def test_status_works_without_access_to_the_api_key(tmp_path, emu, capsys, monkeypatch):
    cfg = _one_watch(tmp_path, emu)
    make_image(tmp_path / "in" / "ok.jpg")
    assert run_once(cfg) == 0
    text = cfg.read_text().replace(f"api_key: {API_KEY}", "api_key_file: /nonexistent/api_key")
    cfg.write_text(text)
    monkeypatch.delenv("SKYLAB_API_KEY", raising=False)
    assert main(["status", "--config", str(cfg)]) == 0
    assert "1 done" in capsys.readouterr().out
    assert main(["check-config", "--config", str(cfg)]) == 1, "the key is still required to run"


def test_an_output_folder_that_cannot_be_written_keeps_the_photo_and_retries(tmp_path, emu):
    cfg = _one_watch(tmp_path, emu)
    blocker = tmp_path / "out" / "shoot"
    blocker.write_text("a file where the output folder should be")
    with DaemonThread(cfg) as d:
        make_image(tmp_path / "in" / "shoot" / "a.jpg")
        wait_for(lambda: "output:w" in d.ledger.notices(), timeout=20, what="the disk notice")
        assert not d.ledger.photos_in_state("failed"), "a disk problem never fails the photo"
        blocker.unlink()
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=30, what="delivery once the folder is fixed")
        wait_for(lambda: "output:w" not in d.ledger.notices(), timeout=10, what="the notice to clear")
    assert (tmp_path / "out" / "shoot" / "a.jpg").is_file()


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_goes_on(tmp_path, emu):
    import os
    cfg = _one_watch(tmp_path, emu)
    inp = tmp_path / "in"
    data = make_image(tmp_path / "x.jpg", seed=4).read_bytes()
    with open(os.path.join(os.fsencode(inp), b"caf\xe9.jpg"), "wb") as fh:  # a Latin-1 name from an old share
        fh.write(data)
    make_image(inp / "ok.jpg", seed=5)
    assert run_once(cfg) == 0
    with DaemonThread(cfg) as d:
        notices = d.ledger.notices()
        assert d.ledger.photos_in_state("done")[0].rel_path == "ok.jpg"
    assert any("not valid UTF-8" in message for message, _ in notices.values())


def test_run_once_exits_1_when_an_input_folder_vanished_before_it_could_be_read(tmp_path, emu):
    cfg = _one_watch(tmp_path, emu)
    runner = DaemonThread(cfg, once=True)  # the config was valid when loaded
    shutil.rmtree(tmp_path / "in")  # then the share went away
    with runner:
        runner.thread.join(30)
        assert not runner.thread.is_alive()
    assert runner.code == 1


def test_delete_after_a_crash_mid_delete_finishes_and_never_deletes_changed_content(tmp_path):
    from skylab_watch.ledger import Ledger
    from skylab_watch.pipeline.deliver import _delete_if_unchanged
    import hashlib
    ledger = Ledger(tmp_path / "l.sqlite3")
    original = tmp_path / "a.jpg"
    original.write_bytes(b"sent content")
    photo = ledger.add_photo("w", "a.jpg", 1, 1, hashlib.md5(b"sent content").hexdigest(), "delivered")
    original.rename(tmp_path / f".a.jpg.{photo.id}.skylab-delete")  # the earlier run died right here
    assert _delete_if_unchanged(original, photo) is True
    assert list(tmp_path.glob("*a.jpg*")) == []
    original.write_bytes(b"edited since it was sent")
    assert _delete_if_unchanged(original, photo) is False
    assert original.read_bytes() == b"edited since it was sent"


def test_an_idle_daemon_passes_about_once_a_second_and_still_takes_a_new_file(tmp_path, emu):
    """Once every file found is finished the loop sleeps up to a second between passes (five passes a second
    were most of an idle daemon's CPU); events still wake it, and a new file is taken in as ever."""
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": tmp_path / "in", "output": tmp_path / "out",
                                            "profile": "plain", "settle_seconds": 0.2}])
    passes: list[float] = []
    with DaemonThread(cfg) as d:
        d.daemon.on_loop = lambda _daemon: passes.append(time.monotonic())
        wait_for(lambda: len(passes) >= 2 and d.daemon.finished(), timeout=10, what="an idle daemon")
        began = passes[-1]
        wait_for(lambda: passes[-1] - began >= 3, timeout=10, what="3 s of idle passes")
        idle = [t for t in passes if t >= began]
        assert len(idle) <= 6, f"{len(idle)} passes in {idle[-1] - idle[0]:.1f} s while idle"
        make_image(tmp_path / "in" / "new.jpg", seed=9)
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=30, what="the new photo delivered")
