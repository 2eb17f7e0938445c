"""A natively watched tree that is only read never wakes the observer (issue 13, idle CPU).

Backups, indexers, viewers and the daemon's own uploads read the watched
tree all night; each open and close used to reach the observer thread.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from skylab_watch.watch.observers import FolderWatcher

from .helpers import Recorder, wait_until

pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")

IN_ACCESS, IN_CLOSE_NOWRITE, IN_OPEN = 0x1, 0x10, 0x20


def _make_tree(root: Path, folders: int = 3, files: int = 30) -> list[Path]:
    """Write `files` small files in each of `folders` sub-folders; return their paths."""
    made = []
    for f in range(folders):
        for i in range(files):
            path = root / f"s{f}" / f"IMG_{i:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 512)
            made.append(path)
    return made


def _read_all(paths: list[Path], rounds: int) -> None:
    """Open, read and close every file `rounds` times, as a backup or indexer would."""
    for _ in range(rounds):
        for path in paths:
            with open(path, "rb") as fh:
                fh.read()


@pytest.fixture
def native_watcher(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    files = _make_tree(root)
    seen = Recorder()
    watcher = FolderWatcher("packshots", root, True, "native", seen, poll_interval=0.1)
    watcher.start()
    yield watcher, seen, files
    watcher.stop()


def test_reading_every_file_of_a_natively_watched_tree_never_wakes_the_observer(native_watcher):
    watcher, seen, files = native_watcher
    assert watcher.mode == "native"
    reader = threading.Thread(target=_read_all, args=(files, 3))
    reader.start()
    reader.join(30)
    # inotify delivers in order: once a file made after the reads is reported, any read's event was too.
    (watcher.root / "s0" / "sentinel.jpg").write_bytes(b"new")
    assert wait_until(lambda: "s0/sentinel.jpg" in seen.seen())
    assert seen.seen() == {"s0/sentinel.jpg"}
    # 270 opens and 270 closes were read; only the sentinel's create, modify and close-after-write arrive.
    assert watcher.events_received <= 4


def test_native_watches_ask_the_kernel_for_no_open_access_or_close_nowrite_events(native_watcher):
    watcher, _seen, _files = native_watcher
    watched = {os.stat(watcher.root / sub).st_ino for sub in ("", "s0", "s1", "s2")}
    masks = {ino: mask for ino, mask in _inotify_masks() if ino in watched}
    assert set(masks) == watched, "every folder of the tree is watched"
    for mask in masks.values():
        assert mask & (IN_ACCESS | IN_OPEN | IN_CLOSE_NOWRITE) == 0, hex(mask)


def _inotify_masks() -> list[tuple[int, int]]:
    """Return (inode, event mask) of every inotify watch this process holds, as the kernel reports them."""
    found = []
    for fd in os.listdir("/proc/self/fdinfo"):
        try:
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        for ino, mask in re.findall(r"^inotify wd:\S+ ino:([0-9a-f]+) .*?mask:([0-9a-f]+)", text, re.M):
            found.append((int(ino, 16), int(mask, 16)))
    return found
