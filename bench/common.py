"""What every benchmark part shares: cached photos, the emulator and the daemon as
child processes, and readings from /proc and the ledger.

Everything runs as children of the bench process (one process tree): the
emulator and the daemon are separate interpreters, so neither's work takes
the other's GIL, and /proc gives each one's own memory and CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
# Photos, trees and scratch folders; the smoke test points it at its tmp_path.
CACHE = Path(os.environ.get("SKYLAB_BENCH_CACHE") or REPO / "bench" / ".cache")
KEY = "bench-key-0123456789"
PROFILE = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- photos -------------------------------------------------------------------


def cached_photos(count: int, width: int = 3000, height: int = 2000) -> list[Path]:
    """Return `count` distinct JPEGs of width x height, made once into bench/.cache.

    The pixels are noise (about 2.8 MB at 3000x2000, Q 85, like a camera JPEG),
    each photo with its own coloured square so that no two share an MD5.
    """
    import pyvips

    folder = CACHE / f"photos-{width}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"IMG_{i:05d}.jpg" for i in range(count)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"  making {len(missing)} photos of {width}x{height} in {folder} (once)", flush=True)
        bands = [pyvips.Image.gaussnoise(width, height, sigma=28, mean=m) for m in (128, 110, 150)]
        base = bands[0].bandjoin(bands[1:]).cast("uchar").copy_memory()
        for path in missing:
            i = int(path.stem.split("_")[1])
            side = max(4, min(width, height) // 30)
            image = base.draw_rect([(i * 37) % 256, (i * 91) % 256, (i * 53) % 256],
                                   (i * side) % (width - side), (i // 7 * side) % (height - side), side, side,
                                   fill=True)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(image.jpegsave_buffer(Q=85))
            tmp.rename(path)
    return paths


def place_photos(photos: list[Path], folder: Path, per_folder: int = 0) -> None:
    """Hard-link (or copy, across file systems) photos into `folder`, optionally in sub-folders."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(photos):
        target = folder / (f"set{i // per_folder:03d}" if per_folder else "") / photo.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(photo, target)
        except OSError:
            shutil.copyfile(photo, target)


def work_dir(name: str) -> Path:
    """Return a fresh scratch folder under bench/.cache (same file system as the photos: links work)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=CACHE))


# ---- /proc --------------------------------------------------------------------


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """Return VmRSS (or VmHWM, the peak) of a process in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class MemorySampler:
    """Sample a process's RSS on a thread every `interval` s; keep start, peak and last."""

    pid: int
    interval: float = 0.2
    samples: list[float] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            value = rss_mb(self.pid)
            if value:
                self.samples.append(value)


# ---- the emulator ---------------------------------------------------------------


class EmulatorProcess:
    """`skylab-watch emulator` in a child process, with 50 ms (or `latency`) added to every call."""

    def __init__(self, scratch: Path, latency: float, processing_seconds: float = 2.0,
                 netns: str | None = None, host: str = "127.0.0.1") -> None:
        faults = scratch / "faults.json"
        faults.write_text(json.dumps({"latency": {"*": latency}} if latency else {}))
        cmd = [sys.executable, "-m", "skylab_watch", "emulator", "--host", host, "--port", "0",
               "--api-key", KEY, "--processing-seconds", str(processing_seconds), "--faults", str(faults),
               "--profile", PROFILE]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        self.log = open(scratch / "emulator.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=REPO,
                                     env={**os.environ, "PYTHONPATH": str(REPO)})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the emulator did not start: {line!r}; see {scratch / 'emulator.log'}")
        self.url = line.split("listening on ", 1)[1].split()[0]
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()  # drain the banner

    def admin(self, what: str) -> Any:
        """GET /_emulator/<what> (state, calls)."""
        return requests.get(f"{self.url}/_emulator/{what}", timeout=60).json()

    def stop(self) -> None:
        end_process(self.proc, 10)
        self.log.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- the daemon -------------------------------------------------------------------


def write_daemon_config(scratch: Path, url: str, concurrency: int = 16, observer: str = "native",
                        **watch: Any) -> Path:
    """Write a config for one watch `bench` (input scratch/in, output scratch/out); return its path.

    Timings are the defaults except what a bench cannot wait for: settle 0.5 s,
    batches of 100 closed after 1 s of quiet, Studio polled every 0.5 s.
    """
    entry: dict[str, Any] = {"name": "bench", "input": str(scratch / "in"), "output": str(scratch / "out"),
                             "profile": PROFILE, "observer": observer, "settle_seconds": 0.5,
                             "batch": {"max_photos": 100, "quiet_seconds": 1, "max_wait_seconds": 10}}
    entry.update(watch)
    for key in ("input", "output"):
        Path(entry[key]).mkdir(parents=True, exist_ok=True)
    studio: dict[str, Any] = {"api_url": url, "api_key": KEY}
    if not url.startswith("http://127."):
        studio["allow_insecure_http"] = True  # the bandwidth part's namespace: a private veth link
    doc = {"studio": studio, "ledger": str(scratch / "ledger.sqlite3"),
           "uploads": {"concurrency": concurrency}, "polling": {"interval_seconds": 0.5}, "watches": [entry]}
    path = scratch / "config.yaml"
    path.write_text(yaml.safe_dump(doc))
    path.chmod(0o600)
    return path


class DaemonProcess:
    """`skylab-watch run` as a child process; `wait_ready()` returns when it sends READY=1.

    It is handed its own NOTIFY_SOCKET, so readiness is the daemon's own
    sd_notify message, exactly as systemd would see it.
    """

    def __init__(self, config: Path, env: dict[str, str] | None = None, netns: str | None = None) -> None:
        self.notify_path = config.parent / "notify.sock"
        self.notify_path.unlink(missing_ok=True)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(self.notify_path))
        cmd = [sys.executable, "-m", "skylab_watch", "run", "--config", str(config)]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        self.log = open(config.parent / "daemon.log", "wb")
        self.started = time.perf_counter()
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "NOTIFY_SOCKET": str(self.notify_path), **(env or {})}
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
        self.ledger = config.parent / "ledger.sqlite3"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = 120) -> float:
        """Block until READY=1; return seconds since the process was started."""
        self.notify.settimeout(0.5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited ({self.proc.returncode}); see its daemon.log") from None
                continue
            if "READY=1" in message.split("\n"):
                ready = time.perf_counter() - self.started
                threading.Thread(target=self._drain, daemon=True).start()
                return ready
        raise RuntimeError(f"the daemon was not ready within {timeout} s")

    def _drain(self) -> None:
        """Read (and drop) the daemon's later STATUS= messages for as long as it runs.

        A unix datagram socket nobody reads fills up, and the daemon's next
        sd_notify send then blocks: the daemon stalls (seen in the e2e run).
        """
        self.notify.settimeout(0.5)
        while self.proc.poll() is None:
            try:
                self.notify.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # closed by stop()
                return

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """Run a read-only query on the daemon's ledger (WAL: it does not block the daemon)."""
        if not self.ledger.exists():
            return []
        conn = sqlite3.connect(f"file:{self.ledger}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # not created or migrated yet
            return []
        finally:
            conn.close()

    def count(self, states: tuple[str, ...]) -> int:
        """Return how many photos are in one of `states`."""
        rows = self.query(f"SELECT count(*) FROM photos WHERE state IN ({','.join('?' * len(states))})", states)
        return rows[0][0] if rows else 0

    def stop(self) -> None:
        end_process(self.proc, 30)
        self.log.close()
        self.notify.close()
        self.notify_path.unlink(missing_ok=True)

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def end_process(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM `proc`, and SIGKILL it if it has not exited within `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll `condition` until truthy; return the time it took; raise RuntimeError after `timeout`."""
    started = time.perf_counter()
    while not condition():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return time.perf_counter() - started


AT_STUDIO = ("queued", "delivering", "delivered", "done")
