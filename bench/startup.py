"""How long the daemon takes to be ready with many photos already processed.

Builds a watch folder with N real files (100,000 for `python -m bench
startup`, in 100 subfolders; kept in bench/.cache for the next run) and a
ledger that records every one of them as done, then starts `skylab-watch
run` as a child process and times start-up (interpreter, ledger open and
migrations, profile lookup against the emulator, observer start and the full
start-up scan) until its READY=1, with its peak memory (VmHWM) at that point.
`.venv/bin/python bench/startup.py [N]` still times the same in-process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import pyvips

from skylab_watch.config import parse_config
from skylab_watch.daemon import Daemon
from skylab_watch.emulator import Emulator
from skylab_watch.ledger import Ledger
from skylab_watch.startup import make_client, wait_for_profiles

KEY = "bench-key"


def build_tree(root: Path, count: int) -> list[tuple[str, int, int, str]]:
    """Write `count` small JPEGs in 100 folders; return (rel_path, size, mtime_ns, md5) of each."""
    data = pyvips.Image.black(64, 48, bands=3).write_to_buffer(".jpg")
    rows = []
    for i in range(count):
        rel = f"shoot{i % 100:03d}/IMG_{i:05d}.jpg"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        content = data + i.to_bytes(4, "big")  # distinct content per file
        path.write_bytes(content)
        st = path.stat()
        rows.append((rel, st.st_size, st.st_mtime_ns, hashlib.md5(content).hexdigest()))
    return rows


def fill_ledger(path: Path, rows: list[tuple[str, int, int, str]]) -> None:
    ledger = Ledger(path)
    with ledger.transaction():
        for rel, size, mtime_ns, md5 in rows:
            ledger.add_photo("bench", rel, size, mtime_ns, md5, "done", width=64, height=48)
    ledger.close()


def main(count: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="skylab-watch-bench-"))
    try:
        rows = build_tree(work / "in", count)
        fill_ledger(work / "ledger.sqlite3", rows)
        with Emulator(api_key=KEY, processing_seconds=1) as emu:
            with make_client_for(emu.url) as _:
                pass
            config = parse_config({
                "studio": {"api_url": emu.url, "api_key": KEY},
                "ledger": str(work / "ledger.sqlite3"),
                "watches": [{"name": "bench", "input": str(work / "in"), "output": str(work / "out"),
                             "profile": "bench"}]}, base_dir=work)
            started = time.perf_counter()
            ledger = Ledger(config.ledger)
            with make_client(config) as studio:
                profiles = wait_for_profiles(config, studio, threading.Event())
                assert profiles is not None, "the profile lookup was stopped"
                daemon = Daemon(config, ledger, studio, profiles)
                found = daemon.start()
                ready = time.perf_counter() - started
                daemon.shutdown(1)
            ledger.close()
        print(f"{count} photos already processed: ready in {ready:.2f} s (start-up scan found {found} new files)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def make_client_for(url: str):
    """Create the profile the bench watch uses."""
    from skylab_watch.studio import StudioClient
    client = StudioClient(url, KEY)
    client.create_profile("bench")
    return client


def cached_tree(count: int) -> tuple[Path, Path]:
    """Return (input folder, done ledger) for `count` files, built once under bench/.cache."""
    from bench.common import CACHE

    root = CACHE / f"tree-{count}"
    if not (root / "ledger.sqlite3").exists():
        print(f"  making {count} files and their ledger in {root} (once)", flush=True)
        shutil.rmtree(root, ignore_errors=True)
        rows = build_tree(root / "in", count)
        fill_ledger(root / "ledger.tmp", rows)
        (root / "ledger.tmp").rename(root / "ledger.sqlite3")
    return root / "in", root / "ledger.sqlite3"


def start_daemon(count: int, scratch: Path, url: str, observer: str = "native"):
    """Start `skylab-watch run` on the cached tree of `count` files, with a copy of its done ledger."""
    from bench.common import DaemonProcess, write_daemon_config

    tree, ledger = cached_tree(count)
    shutil.copyfile(ledger, scratch / "ledger.sqlite3")
    config = write_daemon_config(scratch, url, observer=observer, input=str(tree))
    return DaemonProcess(config)


def run(quick: bool, count: int | None = None) -> dict[str, float]:
    """Time `skylab-watch run` to READY=1 with `count` photos done; print and return the figures."""
    from bench.common import EmulatorProcess, rss_mb, work_dir

    count = count or (2_000 if quick else 100_000)
    print(f"startup: {count} photos in the ledger and on disk", flush=True)
    cached_tree(count)
    scratch = work_dir("startup")
    with EmulatorProcess(scratch, latency=0) as emu, start_daemon(count, scratch, emu.url) as daemon:
        ready = daemon.wait_ready(timeout=300)
        peak, rss = rss_mb(daemon.pid, "VmHWM"), rss_mb(daemon.pid)
    found = daemon.query("SELECT count(*) FROM photos WHERE state != 'done'")
    print(f"  ready after {ready:.2f} s; peak memory {peak:.0f} MB (RSS {rss:.0f} MB) "
          "(goal: under 5 s and 150 MB)", flush=True)
    if found and found[0][0]:
        print(f"  warning: {found[0][0]} photos were not done after start-up", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"files": count, "ready": ready, "peak_mb": peak, "rss_mb": rss}


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
    os._exit(0)
