"""CPU an idle daemon's observer costs with 10,000 files: native, polling, and watchdog's own poller.

Each variant runs in its own process: it builds (once) a tree of N files in
100 folders, starts the observer the daemon uses, waits one interval for it
to settle, then reads its own CPU time (user + system, /proc via os.times)
over WINDOW seconds in which nothing changes. Prints the share of one core.

Run: .venv/bin/python bench/idle_cpu.py [N] [WINDOW]   (defaults 10000 and 60)
Self-contained. On a machine shared with other work the figures are noisy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("native", "polling", "watchdog-polling-5s")


def build_tree(root: Path, count: int) -> None:
    """Write `count` one-byte files in 100 folders."""
    for i in range(count):
        path = root / f"shoot{i % 100:03d}" / f"IMG_{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def measure(variant: str, root: Path, window: float) -> float:
    """In this process: start the variant's observer on `root`; return its CPU share of one core."""
    if variant == "watchdog-polling-5s":  # what `observer: polling` used before
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers.polling import PollingObserverVFS

        observer = PollingObserverVFS(os.lstat, os.scandir, polling_interval=5)
        observer.schedule(FileSystemEventHandler(), str(root), recursive=True)
        observer.start()
        stop, settle = observer.stop, 6.0
    else:
        from skylab_watch.watch.observers import FolderWatcher

        watcher = FolderWatcher("bench", root, True, variant, lambda rel: None)
        watcher.start()
        stop, settle = watcher.stop, watcher.poll_interval + 1
    time.sleep(settle)
    before, started = os.times(), time.monotonic()
    time.sleep(window)
    after, elapsed = os.times(), time.monotonic() - started
    stop()
    return ((after.user - before.user) + (after.system - before.system)) / elapsed


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 10_000
    window = float(argv[1]) if len(argv) > 1 else 60.0
    if os.environ.get("SKYLAB_IDLE_VARIANT"):
        share = measure(os.environ["SKYLAB_IDLE_VARIANT"], Path(os.environ["SKYLAB_IDLE_ROOT"]), window)
        print(f"{os.environ['SKYLAB_IDLE_VARIANT']}: {share * 100:.2f}% of a core over {window:g} s", flush=True)
        return 0
    with tempfile.TemporaryDirectory(prefix="skylab-idle-") as tmp:
        build_tree(Path(tmp), count)
        print(f"{count} files, idle, {window:g} s each, on {os.cpu_count()} cores", flush=True)
        for variant in VARIANTS:
            env = {**os.environ, "SKYLAB_IDLE_VARIANT": variant, "SKYLAB_IDLE_ROOT": tmp}
            subprocess.run([sys.executable, __file__, str(count), str(window)], env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
