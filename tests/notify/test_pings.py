"""Health pings in the healthchecks.io convention, to a real HTTP receiver on loopback."""

from __future__ import annotations

import threading
from pathlib import Path

from daemon_helpers import DaemonThread, write_config
from notify_receiver import Receiver
from support import make_image, wait_for


def _config(tmp: Path, emu, rx: Receiver, name: str = "packshots") -> Path:
    watch = {"name": name, "input": tmp / "in", "output": tmp / "out", "profile": "plain"}
    return write_config(tmp, emu.url, [watch], notify={"ping_url": f"{rx.url}/ping/check-1", "ping_seconds": 0.2})


def test_the_service_pings_while_the_loop_comes_round_and_pings_fail_when_it_stops(tmp_path: Path,
                                                                                    plain_emulator) -> None:
    blocked, release = threading.Event(), threading.Event()

    def hang_once(_daemon) -> None:
        if not blocked.is_set():
            blocked.set()
            release.wait(10)

    with Receiver() as rx, DaemonThread(_config(tmp_path, plain_emulator, rx)) as d:
        wait_for(lambda: [p for p in rx.pings() if p.path == "/ping/check-1"], what="a success ping")
        d.daemon.stall_seconds = 0.5
        d.daemon.on_loop = hang_once
        fail = wait_for(lambda: [p for p in rx.pings() if p.path == "/ping/check-1/fail"], what="a fail ping")
        assert b"work loop has not come round" in fail[0].body
        release.set()
        before = len(rx.pings())
        wait_for(lambda: rx.pings()[before:] and rx.pings()[-1].path == "/ping/check-1", what="success again")


def test_run_once_pings_start_then_success(tmp_path: Path, plain_emulator) -> None:
    with Receiver() as rx:
        make_image(tmp_path / "in" / "a.jpg")
        with DaemonThread(_config(tmp_path, plain_emulator, rx), once=True) as d:
            wait_for(lambda: d.code is not None, what="the run to end")
        paths = [p.path for p in rx.pings()]
        assert paths == ["/ping/check-1/start", "/ping/check-1"]
        assert b"0 photo(s) failed" in rx.pings()[-1].body


def test_run_once_pings_fail_with_a_short_body_when_a_photo_failed(tmp_path: Path, plain_emulator) -> None:
    plain_emulator.set_faults({"fail_jobs": ["broken-*"]})
    with Receiver() as rx:
        make_image(tmp_path / "in" / "a.jpg")
        with DaemonThread(_config(tmp_path, plain_emulator, rx, name="broken"), once=True) as d:
            wait_for(lambda: d.code is not None, what="the run to end")
        assert d.code == 1
        assert [p.path for p in rx.pings()] == ["/ping/check-1/start", "/ping/check-1/fail"]
        assert rx.pings()[-1].body.startswith(b"exit code 1: 1 photo(s) failed")


def test_run_once_done_with_a_rejected_file_pings_success_not_fail(tmp_path: Path, plain_emulator) -> None:
    with Receiver() as rx:
        make_image(tmp_path / "in" / "a.jpg")
        (tmp_path / "in" / "empty.jpg").write_bytes(b"")
        with DaemonThread(_config(tmp_path, plain_emulator, rx), once=True) as d:
            wait_for(lambda: d.code is not None, what="the run to end")
        assert [p.path for p in rx.pings()] == ["/ping/check-1/start", "/ping/check-1"]
        assert rx.pings()[-1].body.startswith(b"0 photo(s) failed, 1 file(s) rejected")
