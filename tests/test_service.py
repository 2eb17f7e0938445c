"""The daemon under a fake systemd: READY, STATUS, WATCHDOG, STOPPING over $NOTIFY_SOCKET,
and the signals a service manager sends (SIGTERM, SIGHUP)."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import API_KEY, free_port, make_image, wait_for
from daemon_helpers import REPO, studio_photos, write_config

from skylab_watch.service import Notifier, watchdog_seconds


class FakeSystemd:
    """A datagram socket standing in for systemd's notify socket; records (time, message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def with_line(self, line: str) -> list[tuple[float, str]]:
        return [(t, m) for t, m in list(self.messages) if line in m.splitlines()]


@pytest.fixture
def emu(plain_emulator):
    return plain_emulator


@pytest.fixture
def systemd(tmp_path):
    fake = FakeSystemd(tmp_path / "notify.sock")
    yield fake
    fake.close()


def _start(cfg: Path, systemd: FakeSystemd, watchdog_usec: int = 2_000_000) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": str(systemd.path),
           "WATCHDOG_USEC": str(watchdog_usec)}
    log = open(cfg.parent / "daemon.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "skylab_watch", "run", "--config", str(cfg)],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))


def _log(cfg: Path) -> str:
    return (cfg.parent / "daemon.log").read_text(errors="replace")


def _watch(tmp_path: Path, name: str) -> dict:
    return {"name": name, "input": tmp_path / "in" / name, "output": tmp_path / "out" / name, "profile": "plain"}


def test_ready_after_scan_watchdog_while_healthy_and_clean_stop(tmp_path, emu, systemd):
    cfg = write_config(tmp_path, emu.url, [_watch(tmp_path, "w")])
    for i in range(3):
        make_image(tmp_path / "in" / "w" / f"early{i}.jpg", seed=i)
    proc = _start(cfg, systemd)
    try:
        ready = wait_for(lambda: systemd.with_line("READY=1"), timeout=30, what="READY=1")
        assert "start-up scan found 3 new file(s)" in ready[0][1]
        wait_for(lambda: len(systemd.with_line("WATCHDOG=1")) >= 3, timeout=20, what="watchdog pings")
        wait_for(lambda: len(studio_photos(emu)) == 3, timeout=30, what="the early photos sent")
        assert any(m.startswith("STATUS=") and "watch(es)" in m for _, m in systemd.messages)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, _log(cfg)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert systemd.with_line("STOPPING=1")
    conn = sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    states = {s for (s,) in conn.execute("SELECT state FROM photos")}
    assert states <= {"ready", "batched", "uploading", "uploaded", "queued", "delivering", "delivered", "done"}


def test_watchdog_pings_stop_while_the_work_loop_is_stuck(tmp_path, emu, systemd):
    cfg = write_config(tmp_path, emu.url, [_watch(tmp_path, "w")])
    proc = _start(cfg, systemd, watchdog_usec=2_000_000)
    try:
        wait_for(lambda: len(systemd.with_line("WATCHDOG=1")) >= 2, timeout=30, what="first pings")
        emu.set_faults({"latency": {"GET jobs/{id}": 5.0}})  # the reconciler's poll of Studio hangs
        make_image(tmp_path / "in" / "w" / "a.jpg")
        wait_for(lambda: emu.calls().get("GET jobs/{id}", 0) >= 1, timeout=30, what="the hanging call")
        stuck_at = time.monotonic()
        wait_for(lambda: "not feeding the systemd watchdog" in _log(cfg), timeout=10, what="the complaint")
        emu.clear_faults()
        wait_for(lambda: any(t > stuck_at + 4 for t, _ in systemd.with_line("WATCHDOG=1")), timeout=30,
                 what="pings to resume once the call returns")
    finally:
        proc.kill()
        proc.wait(10)
    pings = [t for t, _ in systemd.with_line("WATCHDOG=1")]
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert max(gaps) >= 2.5, f"pings must stop while the loop is stuck; gaps were {gaps}"
    assert sorted(gaps)[len(gaps) // 2] < 1.0, "pings come often while healthy"


def test_sighup_adds_a_watch_and_a_broken_config_is_refused(tmp_path, emu, systemd):
    cfg = write_config(tmp_path, emu.url, [_watch(tmp_path, "first")])
    proc = _start(cfg, systemd)
    try:
        wait_for(lambda: systemd.with_line("READY=1"), timeout=30, what="READY=1")
        good = cfg.read_text()
        write_config(tmp_path, emu.url, [_watch(tmp_path, "first"), _watch(tmp_path, "second")])
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "added ['second']" in _log(cfg), timeout=20, what="the reload")
        make_image(tmp_path / "in" / "second" / "new.jpg")
        wait_for(lambda: (tmp_path / "out" / "second" / "new.jpg").exists(), timeout=30,
                 what="the new watch to work")
        cfg.write_text(good.replace("watches:", "watches: [oops", 1))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "refusing the new configuration" in _log(cfg), timeout=20, what="the refusal")
        make_image(tmp_path / "in" / "second" / "after.jpg", seed=5)
        wait_for(lambda: (tmp_path / "out" / "second" / "after.jpg").exists(), timeout=30,
                 what="the old config still running")
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_notifier_without_systemd_does_nothing_and_abstract_sockets_work(tmp_path):
    assert Notifier(env={}).ready("x") is False
    name = f"skylab-watch-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready("scanning done")
        assert sock.recv(1024).decode() == "READY=1\nSTATUS=scanning done"


def test_a_listener_that_stops_reading_never_blocks_the_notifier(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))  # bound, never read: its queue fills after a few hundred messages
        notifier = Notifier(env={"NOTIFY_SOCKET": str(path)})
        done = threading.Event()
        results: list[bool] = []

        def flood() -> None:
            results.extend(notifier.status("x" * 200) for _ in range(2000))
            done.set()

        threading.Thread(target=flood, daemon=True).start()
        assert done.wait(20), "a full notify socket blocked the sender"
        assert results[0] is True and results[-1] is False, "messages beyond the full queue are dropped"


def test_watchdog_is_for_this_process_only():
    assert watchdog_seconds({"WATCHDOG_USEC": "3000000"}) == 3.0
    assert watchdog_seconds({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}) == 3.0
    assert watchdog_seconds({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_seconds({}) is None


def test_debug_logs_never_show_the_api_key_or_the_callback_secret(tmp_path, emu):
    from daemon_helpers import start_process
    port = free_port()
    cfg = write_config(tmp_path, emu.url, [_watch(tmp_path, "w")],
                       callback={"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}/",
                                 "secret": "the-callback-secret-xyz"})
    make_image(tmp_path / "in" / "w" / "a.jpg")
    proc = start_process(cfg, "--once", "--log-level", "debug")
    assert proc.wait(60) == 0, _log(cfg)
    text = _log(cfg)
    assert "X-SLT-API-KEY" in text, "debug logging shows request headers"
    assert API_KEY not in text
    assert "the-callback-secret-xyz" not in text


def test_waiting_for_studio_at_boot_asks_systemd_for_more_time(tmp_path, systemd):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    cfg = write_config(tmp_path, f"http://127.0.0.1:{dead_port}", [_watch(tmp_path, "w")])
    proc = _start(cfg, systemd)
    try:
        extend = wait_for(lambda: [m for _, m in systemd.messages if "EXTEND_TIMEOUT_USEC=" in m],
                          timeout=30, what="EXTEND_TIMEOUT_USEC")
        assert "cannot reach Studio" in extend[0]
        assert not systemd.with_line("READY=1"), "not ready before the profiles are known"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
