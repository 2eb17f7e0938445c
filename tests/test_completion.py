"""Completion end to end: queued jobs -> retouched files at the mirrored paths, by the profile's rules."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import pyvips
import requests
from support import API_KEY, free_port, make_image, wait_for
from daemon_helpers import DaemonThread, write_config

from skylab_watch.emulator import Emulator
from skylab_watch.status import build_report
from skylab_watch.studio import StudioClient, sign_callback
from skylab_watch.studio.upload import send_photo_bytes

SECRET = "callback-secret-for-tests"


@pytest.fixture
def emu():
    with Emulator(api_key=API_KEY, processing_seconds=0.3, callback_secret=SECRET) as e:
        yield e


@pytest.fixture
def studio(emu):
    with StudioClient(emu.url, API_KEY) as c:
        yield c


def _with_backgrounds(studio: StudioClient, tmp_path: Path) -> int:
    profile = studio.create_profile("scenes", enable_extract=True, replace_background=True,
                                    output_file_type="jpg")
    for name, colour in (("beach.jpg", [20, 120, 220]), ("studio-grey.png", [128, 128, 128])):
        bg = (pyvips.Image.black(300, 100, bands=3) + colour).cast("uchar")
        path = tmp_path / "bgs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        bg.write_to_file(str(path))
        record = studio.create_photo(name, profile_id=profile["id"])
        send_photo_bytes(studio, record["id"], path.read_bytes(), regular_job=False)
    return profile["id"]


def _load(path: Path) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(path))


def test_outputs_follow_each_profile_and_originals_are_kept_archived_or_deleted(tmp_path, emu, studio):
    plain = studio.create_profile("plain", output_file_type="jpg")["id"]
    extract = studio.create_profile("extract", enable_extract=True, output_file_type="png")["id"]
    dual = studio.create_profile("dual", enable_extract=True, dual_file_output=True, output_file_type="jpg")["id"]
    scenes = _with_backgrounds(studio, tmp_path)
    w = {name: (tmp_path / "in" / name, tmp_path / "out" / name) for name in ("plain", "extract", "dual", "scenes")}
    cfg = write_config(tmp_path, emu.url, [
        {"name": "plain", "input": w["plain"][0], "output": w["plain"][1], "profile": plain},
        {"name": "extract", "input": w["extract"][0], "output": w["extract"][1], "profile": extract,
         "after_success": "archive", "archive_dir": tmp_path / "archive"},
        {"name": "dual", "input": w["dual"][0], "output": w["dual"][1], "profile": dual,
         "after_success": "delete"},
        {"name": "scenes", "input": w["scenes"][0], "output": w["scenes"][1], "profile": scenes},
    ])
    with DaemonThread(cfg) as d:
        make_image(w["plain"][0] / "a" / "b" / "IMG_1.jpg", 200, 150)
        make_image(w["extract"][0] / "shoe" / "left.jpg", 180, 120)
        make_image(w["dual"][0] / "bag.png", 160, 160)
        make_image(w["scenes"][0] / "x" / "hat.jpg", 240, 160)
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 4, timeout=40, what="4 photos done")
    plain_out = _load(w["plain"][1] / "a" / "b" / "IMG_1.jpg")
    assert (plain_out.width, plain_out.height, plain_out.bands) == (200, 150, 3)
    cut = _load(w["extract"][1] / "shoe" / "left.png")
    assert cut.bands == 4 and cut[3].min() == 0 and cut[3].max() == 255
    assert (cut.width, cut.height) == (180, 120)
    assert sorted(p.name for p in w["dual"][1].iterdir()) == ["bag.jpg", "bag.png"]
    assert _load(w["dual"][1] / "bag.png").bands == 4 and _load(w["dual"][1] / "bag.jpg").bands == 3
    scenes_out = sorted(p.name for p in (w["scenes"][1] / "x").iterdir())
    assert scenes_out == ["hat (beach).jpg", "hat (studio-grey).jpg"]
    beach = _load(w["scenes"][1] / "x" / "hat (beach).jpg")
    assert (beach.width, beach.height, beach.bands) == (240, 160, 3)
    corner = beach.crop(0, 0, 4, 4).avg()
    grey_corner = _load(w["scenes"][1] / "x" / "hat (studio-grey).jpg").crop(0, 0, 4, 4).avg()
    assert abs(corner - grey_corner) > 5, "each background really shows through"
    assert (w["plain"][0] / "a" / "b" / "IMG_1.jpg").exists(), "keep leaves the original"
    assert not (w["extract"][0] / "shoe" / "left.jpg").exists()
    assert (tmp_path / "archive" / "shoe" / "left.jpg").exists(), "archive mirrors the tree"
    assert not (w["dual"][0] / "bag.png").exists(), "delete removes the original after its outputs"


def test_a_file_the_daemon_did_not_write_is_never_overwritten(tmp_path, emu, studio):
    plain = studio.create_profile("plain")["id"]
    inp, out = tmp_path / "in", tmp_path / "out"
    out.mkdir()
    (out / "IMG_1.jpg").write_bytes(b"the studio's own file")
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": inp, "output": out, "profile": plain}])
    with DaemonThread(cfg) as d:
        make_image(inp / "IMG_1.jpg", seed=1)
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=20)
        make_image(inp / "IMG_1.jpg", seed=2)  # a newer version replaces the daemon's own output
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 2, timeout=20)
    assert (out / "IMG_1.jpg").read_bytes() == b"the studio's own file"
    assert sorted(p.name for p in out.iterdir()) == ["IMG_1 (1).jpg", "IMG_1.jpg"]


def test_callback_finishes_a_job_without_waiting_for_a_poll(tmp_path, emu, studio):
    plain = studio.create_profile("plain")["id"]
    inp = tmp_path / "in"
    port = free_port()
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": inp, "output": tmp_path / "out",
                                             "profile": plain}],
                       polling={"interval_seconds": 3600},
                       callback={"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}/skylab",
                                 "secret": SECRET})
    with DaemonThread(cfg) as d:
        make_image(inp / "IMG_1.jpg")
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=20,
                 what="delivery triggered by the callback (polling is hourly)")
        assert emu.state()["callbacks"], "the emulator sent a callback"



def test_forged_and_replayed_callbacks_are_refused(tmp_path, emu, studio):
    plain = studio.create_profile("plain")["id"]
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": tmp_path / "in", "output": tmp_path / "out",
                                             "profile": plain}],
                       callback={"listen": f"127.0.0.1:{free_port()}", "public_url": "http://127.0.0.1:1/",
                                 "secret": SECRET})
    with DaemonThread(cfg) as d:
        url = f"http://127.0.0.1:{d.daemon.callbacks.address[1]}/"
        body = json.dumps({"id": 1, "status": "completed"})
        now = str(int(time.time()))
        forged = requests.patch(url, data=body, headers={"X-Skylab-Timestamp": now,
                                                         "X-Skylab-Signature": sign_callback("wrong", now, body)})
        stale_ts = str(int(time.time()) - 3600)
        stale = requests.patch(url, data=body, headers={"X-Skylab-Timestamp": stale_ts,
                                                        "X-Skylab-Signature": sign_callback(SECRET, stale_ts, body)})
        good_headers = {"X-Skylab-Timestamp": now, "X-Skylab-Signature": sign_callback(SECRET, now, body)}
        first = requests.patch(url, data=body, headers=good_headers)
        replay = requests.patch(url, data=body, headers=good_headers)
        assert not d.ledger.jobs_in_state("queued", "delivered", "failed")
    assert (forged.status_code, stale.status_code, first.status_code, replay.status_code) == (401, 401, 200, 401)


def test_faults_end_in_their_documented_states(tmp_path, emu, studio):
    plain = studio.create_profile("plain")["id"]
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, emu.url, [
        {"name": "w", "input": inp, "output": tmp_path / "out", "profile": plain, "delivery_timeout_seconds": 3,
         "batch": {"max_photos": 2, "quiet_seconds": 0.3, "max_wait_seconds": 5}}])
    emu.set_faults({"errors": {"GET jobs/{id}": {"status": 503, "count": 3},
                               "POST photos": {"status": 429, "count": 2, "retry_after": 0.1}},
                    "expire_downloads_next": 1, "withhold_photos": ["stuck*"]})
    with DaemonThread(cfg) as d:
        make_image(inp / "ok1.jpg", seed=1)
        make_image(inp / "ok2.jpg", seed=2)
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 2, timeout=30, what="good photos despite 5xx/429")
        make_image(inp / "stuck.jpg", seed=3)
        wait_for(lambda: d.ledger.photos_in_state("failed"), timeout=30, what="the never-delivered photo to fail")
        report = build_report(d.ledger, ["w"])
    reasons = [p["reason"] for p in report["problems"] if p["state"] == "failed"]
    assert any("did not deliver a result within 3 s" in r for r in reasons)
    assert emu.calls().get("GET photos/{id}", 0) >= 1, "the expired download link was refreshed"
    assert report["watches"]["w"]["done"] == 2


def test_a_job_that_ends_failed_marks_its_photos_failed_and_retry_sends_them_again(tmp_path, emu, studio):
    plain = studio.create_profile("plain")["id"]
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": inp, "output": tmp_path / "out",
                                             "profile": plain}])
    emu.set_faults({"fail_jobs": ["w-*"]})
    with DaemonThread(cfg) as d:
        make_image(inp / "a.jpg")
        wait_for(lambda: d.ledger.photos_in_state("failed"), timeout=20, what="failure from the failed job")
        reason = d.ledger.photos_in_state("failed")[0].reason
        emu.clear_faults()
        from skylab_watch.cli import main
        assert main(["retry", "--config", str(cfg)]) == 0
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=20, what="the retried photo done")
    assert "failed" in reason
    assert len(emu.state()["jobs"]) == 2


def test_two_originals_with_one_output_name_both_arrive(tmp_path, emu, studio):
    plain = studio.create_profile("plain", output_file_type="jpg")["id"]
    inp, out = tmp_path / "in", tmp_path / "out"
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": inp, "output": out, "profile": plain}])
    with DaemonThread(cfg) as d:
        make_image(inp / "IMG_0.jpg", seed=1)
        make_image(inp / "IMG_0.png", seed=2)
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 2, timeout=30, what="both done")
    assert sorted(p.name for p in out.iterdir()) == ["IMG_0 (1).jpg", "IMG_0.jpg"]


def test_an_output_replaced_by_hand_is_not_overwritten_by_a_reshoot(tmp_path, emu, studio):
    plain = studio.create_profile("plain")["id"]
    inp, out = tmp_path / "in", tmp_path / "out"
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": inp, "output": out, "profile": plain}])
    with DaemonThread(cfg) as d:
        make_image(inp / "a.jpg", seed=1)
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=20)
        (out / "a.jpg").write_bytes(b"hand-edited by the retoucher")
        make_image(inp / "a.jpg", seed=2)
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 2, timeout=20)
    assert (out / "a.jpg").read_bytes() == b"hand-edited by the retoucher"
    assert (out / "a (1).jpg").is_file()


def test_a_job_deleted_at_studio_fails_its_photos_and_other_jobs_carry_on(tmp_path, emu, studio):
    plain = studio.create_profile("plain")["id"]
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, emu.url, [{"name": "w", "input": inp, "output": tmp_path / "out",
                                             "profile": plain, "batch": {"max_photos": 1, "quiet_seconds": 0.3,
                                                                         "max_wait_seconds": 5}}])
    emu.set_faults({"withhold_photos": ["gone.jpg"]})
    with DaemonThread(cfg) as d:
        make_image(inp / "gone.jpg", seed=1)
        wait_for(lambda: d.ledger.jobs_in_state("queued"), timeout=20, what="the first job queued")
        studio.delete_job(d.ledger.jobs_in_state("queued")[0].studio_id)
        make_image(inp / "next.jpg", seed=2)
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=20, what="the next job delivered")
        wait_for(lambda: d.ledger.photos_in_state("failed"), timeout=20, what="the deleted job's photo failed")
        assert "no longer exists" in d.ledger.photos_in_state("failed")[0].reason


def test_a_slow_background_download_never_holds_the_work_loop(tmp_path, emu, studio):
    scenes = _with_backgrounds(studio, tmp_path)
    cfg = write_config(tmp_path, emu.url, [
        {"name": "scenes", "input": tmp_path / "in", "output": tmp_path / "out", "profile": scenes}])
    with DaemonThread(cfg) as d:
        make_image(tmp_path / "in" / "hat.jpg", 240, 160)
        wait_for(lambda: d.ledger.photos_in_state("queued"), timeout=20, what="the photo at Studio")
        emu.set_faults({"latency": {"GET store": 2.0}})  # the backgrounds (and the result) crawl in
        longest, deadline = 0.0, time.monotonic() + 40
        while not d.ledger.photos_in_state("done"):
            assert time.monotonic() < deadline, "the photo was not delivered within 40 s"
            longest = max(longest, time.monotonic() - d.daemon.heartbeat)
            assert longest < 1.5, f"the work loop did not come round for {longest:.1f} s"
            time.sleep(0.05)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["hat (beach).jpg", "hat (studio-grey).jpg"]
