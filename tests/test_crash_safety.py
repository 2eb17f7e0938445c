"""SIGKILL the daemon at chosen moments, restart it, and end where an uninterrupted run ends:
nothing missing, nothing duplicated on Studio, no empty job, every output exactly once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests
from support import API_KEY, make_image, wait_for
from daemon_helpers import md5_of, run_once, start_process, studio_photos, write_config

from skylab_watch.emulator import Emulator
from skylab_watch.ledger import Ledger

PHOTOS = 8


@pytest.fixture
def emu():
    with Emulator(api_key=API_KEY, processing_seconds=0.3) as e:
        yield e


def _setup(tmp_path: Path, emu) -> tuple[Path, dict[str, str]]:
    requests.post(f"{emu.url}/api/public/v1/profiles", json={"name": "plain"},
                  headers={"X-SLT-API-KEY": API_KEY}, timeout=5).raise_for_status()
    inp = tmp_path / "in"
    sources = [make_image(inp / f"set{i % 2}" / f"IMG_{i % 4:04d}.jpg", seed=i) for i in range(PHOTOS)]
    cfg = write_config(tmp_path, emu.url, [{
        "name": "w", "input": inp, "output": tmp_path / "out", "profile": "plain",
        "batch": {"max_photos": 5, "quiet_seconds": 0.3, "max_wait_seconds": 10}}])
    return cfg, {str(p.relative_to(inp)): md5_of(p) for p in sources}


def _kill_when(cfg: Path, condition, what: str) -> None:
    proc = start_process(cfg)
    try:
        wait_for(lambda: condition() or proc.poll() is not None, timeout=60, what=what)
        assert proc.poll() is None, "the daemon ended before the crash point: see daemon.log"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)


def _assert_same_end_state(tmp_path: Path, emu, expected: dict[str, str]) -> None:
    emu.clear_faults()
    assert run_once(tmp_path / "config.yaml") == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    state = emu.state()
    photos = studio_photos(emu)
    assert sorted(p["md5"] for p in photos) == sorted(expected.values()), "each photo on Studio exactly once"
    assert all(p["originalUrl"] for p in photos), "no photo record without bytes"
    assert all(j["photos"] for j in state["jobs"]), "no empty job"
    assert all(j["status"] != "pending" for j in state["jobs"]), "every job queued"
    names = [j["name"] for j in state["jobs"]]
    assert len(names) == len(set(names)), "no job created twice"
    out = tmp_path / "out"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(expected), "every output exactly once, under its mirrored name"
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite3")
    assert len(ledger.photos_in_state("done")) == len(expected)


def test_killed_right_after_a_job_is_created(tmp_path, emu):
    cfg, expected = _setup(tmp_path, emu)
    emu.set_faults({"latency": {"POST photos": 1.0}})
    _kill_when(cfg, lambda: emu.calls().get("POST jobs", 0) >= 1, "a job to be created")
    _assert_same_end_state(tmp_path, emu, expected)


def test_killed_during_uploads(tmp_path, emu):
    cfg, expected = _setup(tmp_path, emu)
    emu.set_faults({"latency": {"PUT store": 0.4}})
    _kill_when(cfg, lambda: emu.calls().get("PUT store", 0) >= 3, "a few uploads")
    _assert_same_end_state(tmp_path, emu, expected)


def test_killed_before_queueing(tmp_path, emu):
    cfg, expected = _setup(tmp_path, emu)
    emu.set_faults({"errors": {"POST jobs/{id}/queue": {"status": 503}}})
    _kill_when(cfg, lambda: emu.calls().get("POST jobs/{id}/queue", 0) >= 1, "an attempt to queue")
    assert all(j["status"] == "pending" for j in emu.state()["jobs"])
    _assert_same_end_state(tmp_path, emu, expected)


def test_killed_during_downloads(tmp_path, emu):
    cfg, expected = _setup(tmp_path, emu)
    emu.set_faults({"latency": {"GET store": 0.5}})
    _kill_when(cfg, lambda: emu.calls().get("GET store", 0) >= 2, "downloads to start")
    out = tmp_path / "out"
    assert not [p for p in out.rglob("*") if p.is_file() and not p.name.startswith(".")
                and p.stat().st_size == 0], "no empty file under a final name"
    _assert_same_end_state(tmp_path, emu, expected)
    assert not list(out.rglob("*.skylab-part")), "no temporary file left behind"
