"""The daemon's life cycle: a bounded stop with a transfer in flight, the exit code of a requested
stop, one daemon per ledger, and `run --once` saying what it waits for (and giving up on time)."""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import API_KEY, make_image, wait_for
from daemon_helpers import REPO, DaemonThread, run_once, start_process, write_config

from skylab_watch import daemon as daemon_module
from skylab_watch.cli import main
from skylab_watch.commands.run import FORCE_EXIT_MARGIN, parse_duration
from skylab_watch.ledger import Ledger



@pytest.fixture
def emu(plain_emulator):
    return plain_emulator


def _config(tmp_path: Path, emu, **watch_extra) -> Path:
    """One watch; a read timeout longer than the 45-second PUT, so the upload really stays in flight."""
    watch = {"name": "w", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain", **watch_extra}
    studio = {"api_url": emu.url, "api_key": API_KEY, "connect_timeout": 2, "read_timeout": 90,
              "retry": {"max_attempts": 3, "initial_seconds": 0.05, "max_backoff_seconds": 0.2}}
    return write_config(tmp_path, emu.url, [watch], studio=studio)


def _log(cfg: Path) -> str:
    return (cfg.parent / "daemon.log").read_text(errors="replace")


def _stop_during(tmp_path: Path, emu, call: str, seconds: float, *grace: str) -> tuple[Path, float, int]:
    """Start the service on one photo, SIGTERM it once `call` (made to take `seconds`) has started; return
    (config, seconds from the signal to the exit, exit code)."""
    cfg = _config(tmp_path, emu)
    emu.set_faults({"latency": {call: seconds}})
    make_image(tmp_path / "in" / "slow.jpg", seed=4)
    proc = start_process(cfg, *grace)
    try:
        wait_for(lambda: emu.calls().get(call, 0) >= 1 or proc.poll() is not None, timeout=30,
                 what=f"{call} to start")
        assert proc.poll() is None, _log(cfg)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        return cfg, time.monotonic() - started, code
    finally:
        if proc.poll() is None:
            proc.kill()


def test_sigterm_with_a_45_second_upload_in_flight_exits_0_within_the_grace_and_the_next_start_redoes_it(
        tmp_path, emu):
    cfg, took, code = _stop_during(tmp_path, emu, "PUT store", 45, "--grace", "2")
    assert code == 0, _log(cfg)
    assert 2 <= took < 2 + 5, f"stopped in {took:.1f} s"
    print(f"stop with a 45 s PUT in flight, grace 2 s: {took:.1f} s")
    assert "still running after the 2 s grace: w: slow.jpg" in _log(cfg)
    ledger = Ledger(cfg.parent / "state" / "ledger.sqlite3")
    assert [p.state for p in ledger.photos_in_state("uploading")] == ["uploading"], "the intent stays recorded"
    ledger.close()
    emu.clear_faults()
    assert run_once(cfg) == 0, _log(cfg)
    ledger = Ledger(cfg.parent / "state" / "ledger.sqlite3")
    assert [p.rel_path for p in ledger.photos_in_state("done")] == ["slow.jpg"]
    assert (tmp_path / "out" / "slow.jpg").exists()


def test_an_upload_that_finishes_within_the_grace_is_recorded_as_uploaded_not_redone(tmp_path, emu):
    """Workers hand their successes to the loop; at a stop the ones finished within the grace are still
    recorded, so the next start neither lists the job's photos nor sends the bytes again."""
    cfg, _took, code = _stop_during(tmp_path, emu, "PUT store", 2, "--grace", "15")
    assert code == 0, _log(cfg)
    ledger = Ledger(cfg.parent / "state" / "ledger.sqlite3")
    assert [p.rel_path for p in ledger.photos_in_state("uploaded")] == ["slow.jpg"], _log(cfg)
    ledger.close()
    assert emu.calls().get("PUT store") == 1
    assert emu.calls().get("GET photos/list_for_job", 0) == 0


def test_a_stop_blocked_on_the_loop_thread_is_ended_by_the_force_exit_timer(tmp_path, emu):
    """The loop itself waits on a slow call (job creation): the timer ends the process after grace + margin."""
    cfg, took, code = _stop_during(tmp_path, emu, "POST jobs", 45, "--grace", "1")
    assert code == 0, _log(cfg)
    assert took < 1 + FORCE_EXIT_MARGIN + 1, f"stopped in {took:.1f} s"
    assert "exiting now" in _log(cfg)


def test_a_requested_stop_exits_0_even_after_a_photo_failed(tmp_path, emu):
    cfg = _config(tmp_path, emu)
    emu.set_faults({"fail_jobs": ["w-*"]})
    make_image(tmp_path / "in" / "doomed.jpg", seed=3)
    proc = start_process(cfg)
    try:
        ledger = Ledger(cfg.parent / "state" / "ledger.sqlite3")
        wait_for(lambda: ledger.photos_in_state("failed") or proc.poll() is not None, timeout=30,
                 what="the photo to fail")
        ledger.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, _log(cfg)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_second_run_on_the_same_ledger_exits_2_naming_the_pid_while_status_retry_and_doctor_work(
        tmp_path, emu, capsys):
    cfg = _config(tmp_path, emu)
    first = start_process(cfg)
    try:
        wait_for(lambda: "is watching" in _log(cfg) or first.poll() is not None, timeout=30, what="first ready")
        assert first.poll() is None, _log(cfg)
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "skylab_watch", "run", "--config", str(cfg), "--once"],
                                capture_output=True, text=True, timeout=30, cwd=str(REPO),
                                env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
        assert second.returncode == 2
        assert time.monotonic() - started < 10, "refused at once"
        assert f"PID {first.pid}" in second.stderr + second.stdout
        assert main(["status", "--config", str(cfg)]) == 0
        assert main(["retry", "--config", str(cfg)]) == 0
        capsys.readouterr()
        main(["doctor", "--config", str(cfg)])
        assert "ledger" in capsys.readouterr().out.lower()
        assert first.poll() is None, "the running daemon is untouched"
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def daemon_lines():
    handler = _Lines()
    logger = logging.getLogger("skylab_watch")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_run_once_says_every_so_often_what_it_waits_for(tmp_path, emu, monkeypatch, daemon_lines):
    monkeypatch.setattr(daemon_module, "WAIT_REPORT_SECONDS", 0.3)
    cfg = _config(tmp_path, emu)
    emu.set_faults({"withhold_photos": ["*"]})
    make_image(tmp_path / "in" / "a.jpg", seed=1)
    make_image(tmp_path / "in" / "b.jpg", seed=2)
    with DaemonThread(cfg, once=True) as d:
        wait_for(lambda: len(d.ledger.photos_in_state("queued")) == 2, timeout=30, what="both queued")
        pattern = re.compile(r"waiting for 2 photo\(s\) at Studio in 1 job\(s\), oldest queued since \d\d:\d\d")
        wait_for(lambda: any(pattern.search(line) for line in daemon_lines), timeout=10, what="the report")
        assert d.thread.is_alive()


def test_run_once_reports_files_still_settling():
    from skylab_watch.unfinished import Unfinished
    text = Unfinished(settling=3, at_studio=12, studio_jobs=2, oldest_queued_at=time.time()).describe()
    assert re.fullmatch(r"12 photo\(s\) at Studio in 2 job\(s\), oldest queued since \d\d:\d\d; "
                        r"3 file\(s\) still settling", text)


def test_run_once_timeout_exits_1_naming_what_is_unfinished(tmp_path, emu):
    cfg = _config(tmp_path, emu)
    emu.set_faults({"withhold_photos": ["*"]})
    make_image(tmp_path / "in" / "a.jpg", seed=1)
    proc = start_process(cfg, "--once", "--timeout", "4s")
    try:
        assert proc.wait(40) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
    assert re.search(r"giving up after 4 s \(--timeout\): still unfinished: 1 photo\(s\)", _log(cfg)), _log(cfg)


def test_run_once_does_not_wait_for_photos_of_a_watch_no_longer_configured(tmp_path, emu):
    cfg = _config(tmp_path, emu)
    ledger = Ledger(cfg.parent / "state" / "ledger.sqlite3")
    ledger.add_photo("removed", "old.jpg", 10, 1, "0" * 32, "ready")
    ledger.close()
    started = time.monotonic()
    assert run_once(cfg, timeout=60) == 0, _log(cfg)
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("45", 45), ("1.5m", 90)])
def test_durations_read_as_a_person_writes_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "-5s", "0", "m"])
def test_a_duration_that_is_not_one_is_refused(text):
    import argparse
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_timeout_without_once_is_refused(tmp_path, emu, capsys):
    cfg = _config(tmp_path, emu)
    assert main(["run", "--config", str(cfg), "--timeout", "5s"]) == 2
    assert "--once" in capsys.readouterr().err
