"""A real inotify queue overflow makes the watch rescan at once, not at the next periodic rescan.

How the overflow is made real: each native observer has its own inotify
instance, read by one watchdog thread that takes `InotifyFD._lock` after each
read. The test
holds that lock, so at most one buffer (2048 events) is read, then makes more
events than the kernel queue holds (`fs.inotify.max_queued_events`): the
kernel drops the rest and queues IN_Q_OVERFLOW. Files created after that point
are never reported by an event. Nothing global is changed (the sysctl is
only read), so other processes on the machine are not affected.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from support import make_image, wait_for
from daemon_helpers import DaemonThread, write_config
from watchdog.observers.inotify_c import InotifyFD

from skylab_watch.watch.observers import FolderWatcher

READ_BUFFER_EVENTS = 2048
"""At most this many events are read before the reader blocks on the held lock (watchdog's buffer)."""


def _max_queued_events() -> int:
    try:
        return int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    except (OSError, ValueError):
        pytest.skip("no /proc/sys/fs/inotify/max_queued_events: not Linux inotify")


@contextmanager
def overflowing(watcher: FolderWatcher) -> Iterator[None]:
    """Overflow the kernel queue of the watcher's inotify instance, then run the block (its events are lost)."""
    shared = getattr(watcher._observer, "_inotify_fd", None)
    assert isinstance(shared, InotifyFD), "a native watcher must be running"
    root = watcher.root
    noise = [root / ".noise-a", root / ".noise-b"]  # hidden: ignored by the watch's filters
    for path in noise:
        path.write_bytes(b"")
    with shared._lock:
        for i in range(_max_queued_events() + READ_BUFFER_EVENTS + 500):
            os.utime(noise[i % 2])  # alternate: the kernel merges an event identical to the last one
        yield


def test_an_overflow_calls_on_overflow_of_a_native_watcher(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    overflowed = threading.Event()
    watcher = FolderWatcher("w", root, True, "native", lambda rel: None, on_overflow=overflowed.set)
    watcher.start()
    try:
        assert watcher.mode == "native" and watcher.listens_for_overflow()
        with overflowing(watcher):
            pass
        assert overflowed.wait(20), "the overflow reached the watcher"
    finally:
        watcher.stop()


def test_a_polling_watcher_has_no_overflow_to_listen_for(tmp_path):
    watcher = FolderWatcher("w", tmp_path, True, "polling", lambda rel: None, poll_interval=0.1)
    watcher.start()
    try:
        assert not watcher.listens_for_overflow()
    finally:
        watcher.stop()


def test_after_an_overflow_a_photo_whose_events_were_lost_is_found_at_once(tmp_path, plain_emulator):
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, plain_emulator.url, [{
        "name": "w", "input": inp, "output": tmp_path / "out", "profile": "plain", "observer": "native",
        "rescan_seconds": 3600}])
    with DaemonThread(cfg) as d:
        wait_for(lambda: d.daemon.discoveries["w"].scanned, what="the start-up scan")
        watcher = d.daemon.discoveries["w"].watcher
        assert watcher is not None
        with overflowing(watcher):
            make_image(inp / "lost-event.jpg", seed=5)
        photo = wait_for(lambda: d.ledger.latest_version("w", "lost-event.jpg"), timeout=20,
                         what="the photo found by the rescan")
        assert photo.rel_path == "lost-event.jpg"
