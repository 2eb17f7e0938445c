"""Helpers for tests that run the whole daemon: configs, in-thread and subprocess daemons,
and questions to ask the emulator."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import yaml
from support import API_KEY

from skylab_watch.config import load_config
from skylab_watch.daemon import Daemon
from skylab_watch.ledger import Ledger
from skylab_watch.startup import make_client, wait_for_profiles

REPO = Path(__file__).resolve().parent.parent


def write_config(tmp: Path, url: str, watches: list[dict[str, Any]], **top: Any) -> Path:
    """Write a config for the emulator at `url`, with fast test timings; return its path."""
    doc: dict[str, Any] = {
        "studio": {"api_url": url, "api_key": API_KEY, "connect_timeout": 2, "read_timeout": 10,
                   "retry": {"max_attempts": 3, "initial_seconds": 0.05, "max_backoff_seconds": 0.2}},
        "ledger": str(tmp / "state" / "ledger.sqlite3"),
        "watches": [],
        "uploads": {"concurrency": 4},
        "polling": {"interval_seconds": 0.3},
        "credits": {"retry_seconds": 0.5},
    }
    for w in watches:
        entry = {"settle_seconds": 0.3, "unreadable_grace_seconds": 1, "rescan_seconds": 2,
                 "batch": {"max_photos": 10, "quiet_seconds": 0.5, "max_wait_seconds": 5}}
        entry.update(w)
        for key in ("input", "output", "archive_dir"):
            if key in entry:
                Path(entry[key]).mkdir(parents=True, exist_ok=True)
                entry[key] = str(entry[key])
        doc["watches"].append(entry)
    doc.update(top)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)  # it holds the key inline: readable by others, it would get a warning
    return path


class DaemonThread:
    """The real daemon running on a thread of the test process."""

    def __init__(self, config_path: Path, once: bool = False) -> None:
        self.config = load_config(config_path)
        self.ledger = Ledger(self.config.ledger)
        self.studio = make_client(self.config)
        self.stop_event = threading.Event()
        profiles = wait_for_profiles(self.config, self.studio, self.stop_event)
        self.daemon = Daemon(self.config, self.ledger, self.studio, profiles, once=once)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.code = self.daemon.run()

    def __enter__(self) -> DaemonThread:
        self.daemon.start()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.thread.join(30)
        self.daemon.shutdown(5)
        self.studio.close()
        self.ledger.close()


def compress_time(d: DaemonThread, cap_seconds: float = 0.3) -> None:
    """Backoffs of minutes become fractions of a second, so an hour of trouble fits in seconds."""
    d.daemon.ctx.health.max_wait = cap_seconds
    d.daemon.ctx.deferrals.cap_seconds = cap_seconds


def start_process(config_path: Path, *extra: str) -> subprocess.Popen:
    """Start `skylab-watch run` as a real process (so it can be SIGKILLed)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = open(config_path.parent / "daemon.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "skylab_watch", "run", "--config", str(config_path), *extra],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))


def run_once(config_path: Path, timeout: float = 120) -> int:
    """Run `skylab-watch run --once` to completion and return its exit code."""
    proc = start_process(config_path, "--once")
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def studio_photos(emu) -> list[dict]:
    """Every photo the emulator holds in a job that still exists."""
    state = emu.state()
    job_ids = {j["id"] for j in state["jobs"]}
    return [p for p in state["photos"] if p.get("jobId") in job_ids]
