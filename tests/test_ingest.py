"""Ingest end to end: folders -> settled, validated photos -> jobs on the emulator, exactly once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from pathlib import Path

from support import API_KEY, make_image, wait_for
from daemon_helpers import DaemonThread, md5_of, studio_photos, write_config

from skylab_watch.ledger import Ledger
from skylab_watch.status import build_report


def _profile(emulator, name="plain", **fields) -> int:
    import requests
    answer = requests.post(f"{emulator.url}/api/public/v1/profiles", json={"name": name, **fields},
                           headers={"X-SLT-API-KEY": API_KEY}, timeout=5)
    return answer.json()["id"]


def _write_slowly(path: Path, data: bytes, chunks: int = 8, pause: float = 0.15) -> threading.Thread:
    """Write `data` to `path` in chunks, like a slow copy over a network share."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def writer() -> None:
        step = len(data) // chunks + 1
        with open(path, "wb") as fh:
            for i in range(0, len(data), step):
                fh.write(data[i:i + step])
                fh.flush()
                time.sleep(pause)
    thread = threading.Thread(target=writer)
    thread.start()
    return thread


def test_bursts_into_two_watches_arrive_exactly_once(tmp_path, emulator):
    profile = _profile(emulator)
    a_in, b_in = tmp_path / "in" / "a", tmp_path / "in" / "b"
    cfg = write_config(tmp_path, emulator.url, [
        {"name": "alpha", "input": a_in, "output": tmp_path / "out" / "a", "profile": profile,
         "batch": {"max_photos": 4, "quiet_seconds": 0.6, "max_wait_seconds": 30}},
        {"name": "beta", "input": b_in, "output": tmp_path / "out" / "b", "profile": "plain",
         "observer": "polling", "poll_interval_seconds": 0.2},
    ])
    make_image(a_in / "early" / "IMG_0001.jpg", seed=99)  # dropped while the daemon was down
    expected: dict[str, str] = {}
    with DaemonThread(cfg) as d:
        sources = []
        for i in range(6):
            sources.append(make_image(a_in / "s1" / f"IMG_{i:04d}.jpg", seed=i))
        for i in range(3):
            sources.append(make_image(a_in / "s2" / f"IMG_{i:04d}.jpg", seed=50 + i))  # same names, other folder
        for i in range(4):
            sources.append(make_image(b_in / "deep" / "er" / f"P{i}.png", seed=100 + i))
        slow_data = make_image(tmp_path / "staging-slow.jpg", width=900, height=700, seed=7).read_bytes()
        slow = _write_slowly(a_in / "s3" / "slow.jpg", slow_data)
        slow.join()
        sources += [a_in / "early" / "IMG_0001.jpg", a_in / "s3" / "slow.jpg"]
        expected = {str(p): md5_of(p) for p in sources}
        wait_for(lambda: len(studio_photos(emulator)) >= len(expected)
                 and all(j["status"] != "pending" for j in emulator.state()["jobs"]), timeout=60,
                 what="every photo uploaded and every job queued")
        wait_for(lambda: not d.ledger.jobs_in_state("created", "queueing", "closed"), timeout=20)
    photos = studio_photos(emulator)
    assert Counter(p["md5"] for p in photos) == Counter(expected.values())
    assert len(photos) == len(expected)
    state = emulator.state()
    alpha_jobs = [j for j in state["jobs"] if j["name"].startswith("alpha-")]
    assert all(len(j["photos"]) <= 4 for j in alpha_jobs), "max_photos=4 must bound every alpha job"
    assert all(j["photos"] for j in state["jobs"]), "no empty job"
    assert all(j["queuedAt"] for j in state["jobs"]), "every job queued"
    assert emulator.calls().get("POST jobs/{id}/queue") == len(state["jobs"]), "each job queued exactly once"
    for job in state["jobs"]:
        names = [p["name"] for p in job["photos"]]
        assert len(names) == len(set(names)), "photo names unique within a job"


def test_rejected_inputs_are_reported_and_the_daemon_keeps_going(tmp_path, emulator):
    profile = _profile(emulator)
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, emulator.url, [{"name": "w", "input": inp, "output": tmp_path / "out",
                                             "profile": profile}])
    with DaemonThread(cfg) as d:
        (inp / "empty.jpg").write_bytes(b"")
        good = make_image(tmp_path / "x.jpg", width=400, height=300).read_bytes()
        (inp / "truncated.jpg").write_bytes(good[: len(good) * 6 // 10])
        (inp / "notes.jpg").write_text("this is not a photo")
        make_image(inp / "wide.png", width=6500, height=20)
        make_image(inp / "scan.tif")
        make_image(inp / "ok.jpg")
        wait_for(lambda: len(d.ledger.photos_in_state("rejected")) == 5, timeout=20, what="5 rejections")
        wait_for(lambda: d.ledger.photos_in_state("done", "delivered", "queued"), timeout=20,
                 what="the good photo to go on")
        assert d.thread.is_alive()
        report = build_report(d.ledger, ["w"])
    reasons = {p["path"]: p["reason"] for p in report["problems"]}
    assert "empty" in reasons["empty.jpg"]
    assert "truncated" in reasons["truncated.jpg"] or "corrupt" in reasons["truncated.jpg"]
    assert "not a readable image" in reasons["notes.jpg"]
    assert "6400" in reasons["wide.png"]
    assert ".tif" in reasons["scan.tif"]
    assert report["watches"]["w"]["rejected"] == 5
    assert len(studio_photos(emulator)) == 1


def test_out_of_credits_pauses_without_failing_and_resumes_by_itself(tmp_path, emulator):
    profile = _profile(emulator)
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, emulator.url, [{"name": "w", "input": inp, "output": tmp_path / "out",
                                             "profile": profile}])
    emulator.set_out_of_credits(True)
    with DaemonThread(cfg) as d:
        for i in range(3):
            make_image(inp / f"c{i}.jpg", seed=i)
        wait_for(lambda: "credits" in d.ledger.notices(), timeout=20, what="the out-of-credits notice")
        calls_while_paused = emulator.calls().get("POST jobs", 0)
        assert not d.ledger.photos_in_state("failed")
        report = build_report(d.ledger, ["w"])
        assert any("credits" in n["message"] for n in report["notices"])
        emulator.set_out_of_credits(False)
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 3, timeout=30, what="all three done")
        assert "credits" not in d.ledger.notices()
    assert calls_while_paused >= 1
    assert not Ledger(cfg.parent / "state" / "ledger.sqlite3").photos_in_state("failed")


def test_same_content_elsewhere_is_a_duplicate_and_a_reshoot_is_a_new_version(tmp_path, emulator):
    profile = _profile(emulator)
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, emulator.url, [{"name": "w", "input": inp, "output": tmp_path / "out",
                                             "profile": profile}])
    with DaemonThread(cfg) as d:
        first = make_image(inp / "a" / "one.jpg", seed=1)
        wait_for(lambda: d.ledger.photos_in_state("done"), timeout=20, what="first photo done")
        (inp / "b").mkdir()
        (inp / "b" / "copy.jpg").write_bytes(first.read_bytes())
        wait_for(lambda: d.ledger.photos_in_state("duplicate"), timeout=20, what="the copy noticed")
        make_image(inp / "a" / "one.jpg", seed=2)  # re-shoot at the same path
        wait_for(lambda: len(d.ledger.photos_in_state("done")) == 2, timeout=20, what="re-shoot done")
        versions = [p.version for p in d.ledger.photos_in_state("done")]
    assert sorted(versions) == [1, 2]
    assert len(studio_photos(emulator)) == 2


def test_a_camera_photo_whose_copy_pauses_halfway_is_checked_ahead_yet_sent_whole_once(tmp_path, emulator,
                                                                                         monkeypatch):
    from skylab_watch.pipeline import intake
    _profile(emulator)
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, emulator.url, [{"name": "w", "input": inp, "output": tmp_path / "out",
                                                 "profile": "plain", "settle_seconds": 3.0}])
    whole = make_image(tmp_path / "camera.jpg", 4000, 3000).read_bytes()
    checks: Counter = Counter()
    real = intake.inspect_photo

    def counting(path: Path, **options):
        checks[path.name] += 1
        return real(path, **options)
    monkeypatch.setattr(intake, "inspect_photo", counting)
    with DaemonThread(cfg) as d:
        (inp / "a.jpg").write_bytes(whole[: len(whole) // 2])  # the copy stalls halfway
        wait_for(lambda: checks["a.jpg"] >= 1, timeout=10, what="the half-written file checked ahead")
        with (inp / "a.jpg").open("ab") as rest:
            rest.write(whole[len(whole) // 2:])  # and goes on before it settled
        wait_for(lambda: d.ledger.photos_in_state("uploaded", "queued", "delivering", "delivered", "done"),
                 timeout=30, what="the photo sent")
        versions = [p for p in d.ledger.photos_in_state(*("ready", "batched", "uploading", "uploaded", "queued",
                                                         "delivering", "delivered", "done", "rejected"))]
        assert [(p.rel_path, p.state != "rejected", p.md5, p.size) for p in versions] == \
            [("a.jpg", True, hashlib.md5(whole).hexdigest(), len(whole))], "one version, whole, never rejected"
        assert checks["a.jpg"] == 2, "the check ahead saw it cut short; the settled check saw it whole"
        sent = studio_photos(emulator)
        assert [(p["name"], p["size"]) for p in sent] == [("a.jpg", len(whole))]
