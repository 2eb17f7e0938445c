"""Observers: turn file-system events under a watched folder into "look at this path" reports.

Each `FolderWatcher` owns one watchdog observer, native (inotify) or
polling. Its thread only *reports*: it calls `on_path(rel_path)` and the
daemon decides what to do (stat, settle, record in the ledger). Reports are
hints, not facts: duplicates and paths that vanished are normal, filtering
(`filters.is_candidate`) is the caller's job, and the periodic rescan covers
whatever an observer misses.

When the kernel's inotify queue overflows, events were lost: the watcher
calls `on_overflow()` (if given) so that the daemon rescans that watch at
once instead of waiting for the periodic rescan. watchdog does not turn an
overflow into an event; it calls `on_queue_overflow()` on each watch group,
which is where the watcher listens (`_listen_for_overflow`).

Native watching needs one inotify watch per folder. When the per-user limit
is too low for the tree, the watcher falls back to polling for that watch
rather than silently watching only part of it.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer as NativeObserver
from watchdog.observers.api import BaseObserver

from skylab_watch.watch.polling import DEFAULT_POLL_INTERVAL, ListingObserver
from skylab_watch.watch.scan import (
    RootUnavailable,
    path_crosses_symlink,
    require_root,
    root_available,
    scan_tree,
)

log = logging.getLogger(__name__)

NATIVE = "native"
POLLING = "polling"
MODES = (NATIVE, POLLING)

INOTIFY_WATCHES_FILE = Path("/proc/sys/fs/inotify/max_user_watches")
_INOTIFY_LIMIT_ERRNOS = (errno.ENOSPC, errno.EMFILE)
_STOP_TIMEOUT = 10.0

_REPORTED_AT_SOURCE = (FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileAttribEvent, DirCreatedEvent)
"""Events whose `src_path` is worth a look (attrib: a chmod may make a file readable)."""

_REPORTED_AT_DEST = (FileMovedEvent, DirMovedEvent)
"""Renames count from their destination: a file renamed into place is complete from then."""

EVENTS_ASKED_FOR = [*_REPORTED_AT_SOURCE, *_REPORTED_AT_DEST]
"""The only events an observer asks watchdog for; it turns this list into the inotify mask.

Without it watchdog asks the kernel for opens and closes-without-write too
(`IN_OPEN`, `IN_CLOSE_NOWRITE`), so every process that merely reads the
tree (a backup, an indexer, a viewer, the daemon's own uploads) woke the
observer thread once or twice per file it touched. Reads are never news to
a hot folder. Modified (with attrib), created, closed-after-write and moved
are what `_report_event` uses; deletions are not reported either. A
recursive watch still gets `IN_CREATE` for folders, which watchdog needs to
watch new sub-folders.
"""

__all__ = [
    "FolderWatcher",
    "MODES",
    "NATIVE",
    "POLLING",
    "count_folders",
    "inotify_watch_limit",
    "root_available",
]


def inotify_watch_limit() -> int | None:
    """Return the per-user inotify watch limit, or None where it cannot be read (not Linux)."""
    try:
        return int(INOTIFY_WATCHES_FILE.read_text().strip())
    except (OSError, ValueError):
        return None


def count_folders(root: Path, recursive: bool) -> int:
    """Return how many inotify watches watching `root` would need (its folders, root included).

    Symlinked folders are not counted (they are not followed); unreadable
    subfolders count but are not entered. Returns 0 if the root cannot be read.
    """
    if root_available(root) is not None:
        return 0
    if not recursive:
        return 1
    count, pending = 1, [str(root)]
    while pending:
        try:
            with os.scandir(pending.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        count += 1
                        pending.append(entry.path)
        except OSError:
            continue
    return count


def _is_inotify_limit(exc: OSError) -> bool:
    """Return True if starting inotify failed for lack of watches or instances."""
    message = str(exc).lower()
    return exc.errno in _INOTIFY_LIMIT_ERRNOS or ("inotify" in message and "limit" in message)


class _Reporter(FileSystemEventHandler):
    """Forward every event to the watcher, never letting an error kill the observer thread."""

    def __init__(self, watcher: FolderWatcher) -> None:
        self._watcher = watcher
        self.received = 0  # every wake-up of the observer thread for this watch (see events_received)

    def dispatch(self, event: FileSystemEvent) -> None:
        self.received += 1
        try:
            self._watcher._report_event(event)
        except Exception:  # the observer thread must outlive any one bad event
            log.exception("%s: could not report the event %r.", self._watcher.name, event)


class FolderWatcher:
    """Watch one folder and call `on_path(rel_path)` for every file that may be new or changed.

    `mode` is the requested mode ("native" or "polling"); the `mode`
    property tells the one in use, which is "polling" after a fallback.
    `on_path` runs on the observer's thread and must be quick (put the path
    on a queue); so does `on_overflow`, called when inotify lost events.
    Paths are POSIX, relative to `root`; paths outside the root or through a
    symlink are never reported.
    """

    def __init__(
        self,
        name: str,
        root: Path,
        recursive: bool,
        mode: str,
        on_path: Callable[[str], None],
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.name = name
        self.root = Path(os.path.abspath(root))
        self.recursive = recursive
        self.requested_mode = mode
        self.poll_interval = poll_interval
        self._on_path = on_path
        self._on_overflow = on_overflow
        self._handler = _Reporter(self)
        self._lock = threading.RLock()
        self._observer: BaseObserver | None = None
        self._mode = mode

    @property
    def mode(self) -> str:
        """The mode actually in use: "polling" if native watching had to fall back."""
        return self._mode

    @property
    def events_received(self) -> int:
        """How many events watchdog has handed this watcher, reported or not (each one a wake-up)."""
        return self._handler.received

    def start(self) -> None:
        """Start watching; do nothing if already started.

        Raise `RootUnavailable` if the folder is missing or unreadable, and
        OSError for other failures to start the native observer.
        """
        with self._lock:
            if self._observer is not None:
                return
            require_root(self.root)
            self._observer, self._mode = self._start_observer()
            log.info("%s: watching %s (%s).", self.name, self.root, self._mode)

    def stop(self) -> None:
        """Stop watching and wait for the observer threads to end; safe to call twice."""
        with self._lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            _discard(observer)

    def restart(self) -> None:
        """Stop and start a fresh observer, e.g. once a vanished root is back.

        Native watching is tried again even after a fallback, in case the
        inotify limit was raised. Raise `RootUnavailable` if the root is still missing.
        """
        with self._lock:
            self.stop()
            self.start()

    def is_alive(self) -> bool:
        """Return True if the observer and every one of its emitters is running.

        An emitter stops on its own when the root is deleted, while the
        observer thread carries on, so both are checked.
        """
        observer = self._observer
        if observer is None or not observer.is_alive():
            return False
        emitters = list(observer.emitters)
        return bool(emitters) and all(emitter.is_alive() for emitter in emitters)

    def ensure_running(self) -> bool:
        """Restart the observer if its threads died; return True if a restart happened.

        Does nothing for a watcher never started (or stopped on purpose), and
        nothing while the root is unavailable: the daemon pauses the watch
        and calls `restart()` once the root is back.
        """
        with self._lock:
            if self._observer is None or self.is_alive():
                return False
            problem = root_available(self.root)
            if problem is not None:
                log.debug("%s: the observer stopped and %s: %s; not restarting yet.", self.name, self.root, problem)
                return False
            log.warning("%s: the %s observer of %s stopped unexpectedly; restarting it.",
                        self.name, self._mode, self.root)
            try:
                self.restart()
            except OSError as exc:
                log.error("%s: could not restart watching %s: %s.", self.name, self.root, exc)
                return False
            return True

    def _start_observer(self) -> tuple[BaseObserver, str]:
        """Start the requested observer, falling back to polling on inotify limits."""
        if self.requested_mode == POLLING:
            return self._launch(POLLING), POLLING
        folders = count_folders(self.root, self.recursive)
        limit = inotify_watch_limit()
        if limit is not None and folders > limit:
            self._warn_inotify_limit(folders, limit, f"{folders} folders need more watches than the limit")
            return self._launch(POLLING), POLLING
        try:
            observer = self._launch(NATIVE)
        except OSError as exc:
            if not _is_inotify_limit(exc):
                raise
            self._warn_inotify_limit(folders, limit, str(exc))
            return self._launch(POLLING), POLLING
        watched = _watched_folders(observer)
        if watched is not None and watched < folders:
            _discard(observer)
            self._warn_inotify_limit(folders, limit, "some subfolders could not be watched")
            return self._launch(POLLING), POLLING
        return observer, NATIVE

    def _launch(self, mode: str) -> BaseObserver:
        """Build, schedule and start one observer; clean it up if starting fails."""
        observer: BaseObserver
        if mode == NATIVE:
            observer = NativeObserver()
        else:
            observer = ListingObserver(self.poll_interval)
        try:
            observer.schedule(self._handler, str(self.root), recursive=self.recursive,
                              event_filter=EVENTS_ASKED_FOR)
            observer.start()
        except BaseException:
            _discard(observer)
            raise
        if mode == NATIVE:
            self._listen_for_overflow(observer)
        return observer

    def listens_for_overflow(self) -> bool:
        """Return True if an inotify overflow reaches `on_overflow` (native watching, hook in place)."""
        observer = self._observer
        return observer is not None and any(
            isinstance(getattr(getattr(e, "_inotify", None), "on_queue_overflow", None), _OverflowHook)
            for e in observer.emitters)

    def _listen_for_overflow(self, observer: BaseObserver) -> None:
        """Hook each emitter's inotify watch group so that an overflow also calls `_overflowed`.

        This reaches into watchdog (its `InotifyEmitter._inotify` group); a
        test fails if an upgrade moves it, and meanwhile the periodic rescan
        still covers lost events.
        """
        for emitter in observer.emitters:
            group = getattr(emitter, "_inotify", None)
            original = getattr(group, "on_queue_overflow", None)
            if group is None or original is None:
                log.debug("%s: cannot listen for inotify overflows; the periodic rescan covers them.", self.name)
                continue
            group.on_queue_overflow = _OverflowHook(original, self._overflowed)

    def _overflowed(self) -> None:
        log.warning("%s: the inotify event queue overflowed, so events under %s were lost; rescanning it now.",
                    self.name, self.root)
        if self._on_overflow is not None:
            self._on_overflow()

    def _warn_inotify_limit(self, folders: int, limit: int | None, detail: str) -> None:
        shown = "unknown" if limit is None else str(limit)
        log.warning(
            "%s: the inotify limit is too low to watch %s natively (%s; %d folders, "
            "fs.inotify.max_user_watches = %s); watching it by polling every %g s instead. "
            "To use native events, raise the limit, e.g. 'sudo sysctl fs.inotify.max_user_watches=524288' "
            "(and fs.inotify.max_user_instances if instances ran out), and make it permanent in /etc/sysctl.d/.",
            self.name, self.root, detail, folders, shown, self.poll_interval,
        )

    def _report_event(self, event: FileSystemEvent) -> None:
        """Turn one watchdog event into zero or more `on_path` calls."""
        if isinstance(event, _REPORTED_AT_DEST):
            path = event.dest_path
        elif isinstance(event, _REPORTED_AT_SOURCE):
            path = event.src_path
        else:
            return
        rel_path = self._relative(os.fsdecode(path))
        if rel_path is None or path_crosses_symlink(self.root, rel_path):
            return
        if not event.is_directory:
            self._on_path(rel_path)
        elif self.recursive:
            self._report_folder(rel_path)

    def _relative(self, path: str) -> str | None:
        """Return the POSIX path under the root, or None for the root itself or outside it."""
        if not path:
            return None
        rel = os.path.relpath(path, self.root)
        if rel == "." or rel == ".." or rel.startswith(".." + os.sep) or os.path.isabs(rel):
            return None
        rel_path = rel.replace(os.sep, "/")
        return rel_path if self.recursive or "/" not in rel_path else None

    def _report_folder(self, rel_dir: str) -> None:
        """Report every file in a folder that appeared at once (copied or moved in)."""
        try:
            files = scan_tree(self.root / rel_dir, recursive=True)
            for found in files:
                self._on_path(f"{rel_dir}/{found.rel_path}")
        except RootUnavailable:
            return  # gone again already; nothing to report


class _OverflowHook:
    """Stands in for a watch group's `on_queue_overflow`: runs watchdog's own handling, then ours."""

    def __init__(self, original: Callable[[], None], then: Callable[[], None]) -> None:
        self.original = original
        self.then = then

    def __call__(self) -> None:
        try:
            self.original()
        finally:
            self.then()


def _watched_folders(observer: BaseObserver) -> int | None:
    """Return how many folders a native observer really watches, or None if it cannot tell.

    watchdog skips subfolders it fails to watch (for example at the inotify
    limit) without telling; this peeks at its bookkeeping to catch that.
    """
    total = 0
    for emitter in observer.emitters:
        watched = getattr(getattr(emitter, "_inotify", None), "_active_callbacks_by_path", None)
        if not isinstance(watched, dict):
            return None
        total += len(watched)
    return total


def _discard(observer: BaseObserver) -> None:
    """Stop an observer and wait for its threads, whatever state it is in."""
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(_STOP_TIMEOUT)
    except Exception:  # a half-started observer may fail to stop; it is being dropped anyway
        log.debug("Stopping a watchdog observer failed.", exc_info=True)
