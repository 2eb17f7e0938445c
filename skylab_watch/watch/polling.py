"""The polling observer: finds new and changed files by listing the tree, for shares without inotify.

watchdog's own poller builds a `DirectorySnapshot` of the whole tree and
diffs it (inode maps, moves, deletions) on every pass: about 110-220 ms of
CPU for 10,000 files on the reference machine, 2-4% of a core at a 5 s
interval. The daemon only needs "this file is new or changed" (renames count
from their new name; deletions are not news), so a pass here is one
`os.scandir` per folder and the `DirEntry`'s own lstat, compared with the
last pass as a plain tuple per path: about 40-75 ms for the same tree.
Symlinks are never followed (lstat), so a linked folder is never entered.

The interval is the trade-off: a file is noticed up to one interval after
it appears (then it still has to settle), and each pass costs CPU in
proportion to the files in the tree. See `DEFAULT_POLL_INTERVAL` and the
README's "Memory and idle CPU".
"""

from __future__ import annotations

import logging
import os
import stat
import threading

from watchdog.events import DirDeletedEvent, FileCreatedEvent, FileModifiedEvent
from watchdog.observers.api import BaseObserver, EventEmitter, EventQueue, ObservedWatch

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 10.0
"""Seconds between passes: 10,000 files cost well under 1% of a core, a new file waits at most 10 s."""

_Look = tuple[int, int, int]
"""What one pass saw of a file: (inode, size, mtime in ns); any difference is a change."""


def list_tree(root: str, recursive: bool) -> dict[str, _Look]:
    """Given a folder, return {path: (inode, size, mtime_ns)} of every file under it, without following links.

    Raise OSError if the root itself cannot be listed; a sub-folder that
    cannot be (gone, private) is skipped, its files simply not seen this pass.
    """
    found: dict[str, _Look] = {}
    with os.scandir(root) as entries:
        pending = _take(entries, found, recursive)
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                pending.extend(_take(entries, found, recursive))
        except OSError:
            continue
    return found


def _take(entries, found: dict[str, _Look], recursive: bool) -> list[str]:
    """Record the files among `entries`; return the sub-folders to enter next."""
    folders = []
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # gone since the listing
        if stat.S_ISDIR(st.st_mode):
            if recursive:
                folders.append(entry.path)
        else:
            found[entry.path] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return folders


class ListingEmitter(EventEmitter):
    """A watchdog emitter that lists its folder every `timeout` seconds and queues what is new or changed.

    Like watchdog's poller: a root that is gone stops the emitter with a
    DirDeletedEvent (the watcher restarts it once the folder is back); any
    other failure to list keeps the last listing and tries again next pass,
    so changes made meanwhile are reported then.
    """

    def __init__(self, event_queue: EventQueue, watch: ObservedWatch, timeout: float = DEFAULT_POLL_INTERVAL,
                 event_filter=None) -> None:
        super().__init__(event_queue, watch, timeout=timeout, event_filter=event_filter)
        self._lock = threading.Lock()
        self._last: dict[str, _Look] = {}
        self._failing = False

    def on_thread_start(self) -> None:
        """Take the first listing: files already there are the start-up scan's business, not news."""
        try:
            self._last = list_tree(self.watch.path, self.watch.is_recursive)
        except OSError:
            self._last = {}

    def queue_events(self, timeout: float) -> None:
        """Wait one interval, list the tree again and queue a created or modified event per difference."""
        if self.stopped_event.wait(timeout):
            return
        with self._lock:
            if not self.should_keep_running():
                return
            try:
                now = list_tree(self.watch.path, self.watch.is_recursive)
            except (FileNotFoundError, NotADirectoryError):
                self.queue_event(DirDeletedEvent(self.watch.path))
                self.stop()
                return
            except OSError as exc:
                if not self._failing:
                    log.warning("Cannot list %s, will try again: %s", self.watch.path, exc)
                self._failing = True
                return
            self._failing = False
            self._report_changes(now)

    def _report_changes(self, now: dict[str, _Look]) -> None:
        last, self._last = self._last, now
        for path, look in now.items():
            before = last.get(path)
            if before is None:
                self.queue_event(FileCreatedEvent(path))
            elif before != look:
                self.queue_event(FileModifiedEvent(path))


class ListingObserver(BaseObserver):
    """The observer for `observer: polling`: one `ListingEmitter` per scheduled folder."""

    def __init__(self, interval: float = DEFAULT_POLL_INTERVAL) -> None:
        super().__init__(ListingEmitter, timeout=interval)
