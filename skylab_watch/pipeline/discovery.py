"""Discovery for one watch: start-up scan, watchdog events, periodic rescan,
settle tracking, and pausing while the input root is gone.

Observer threads only put relative paths on a queue; everything here runs on
the reconciler thread, which is the only one that decides.
"""

from __future__ import annotations

import logging
import os
import queue
import time
from dataclasses import dataclass, field
from typing import Callable

from skylab_watch.config import WatchConfig
from skylab_watch.ledger import Ledger, PhotoState
from skylab_watch.watch.filters import is_candidate
from skylab_watch.watch.observers import FolderWatcher, root_available
from skylab_watch.watch.scan import FileStat, RootUnavailable, describe_folder_error, scan_tree, stat_candidate
from skylab_watch.watch.plain_files import open_plain_file
from skylab_watch.watch.settle import SettleTracker
from skylab_watch.watch.validate import NO_PERMISSION

log = logging.getLogger("skylab_watch")

ROOT_CHECK_SECONDS = 2.0
RESCAN_NOW = ""
"""Put on the events queue instead of a path (never empty) when the observer lost events: rescan at once."""


def paused_notice_key(watch: str) -> str:
    """Return the ledger notice key under which a paused watch is reported."""
    return f"watch:{watch}"


def folder_notice_key(watch: str, rel_dir: str) -> str:
    """Return the ledger notice key under which a folder of a watch that cannot be read is reported."""
    return f"folder:{watch}:{rel_dir}"


def printable(rel_path: str, keep: int = 80) -> str:
    """Return a path fit for a notice: undecodable bytes escaped, and shortened in the middle past `keep` chars."""
    shown = rel_path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if len(shown) <= keep:
        return shown
    return f"{shown[:keep // 2]}...{shown[-keep // 2:]} ({len(shown)} characters)"


@dataclass
class WatchDiscovery:
    """Everything the daemon tracks about one watch between loops."""

    config: WatchConfig
    ledger: Ledger
    events: queue.Queue[tuple[str, str]]
    clock: Callable[[], float] = time.monotonic
    tracker: SettleTracker = field(init=False)
    watcher: FolderWatcher | None = field(init=False, default=None)
    paused_reason: str | None = field(init=False, default=None)
    scanned: bool = field(init=False, default=False)
    _last_scan: float = field(init=False, default=0.0)
    _last_root_check: float = field(init=False, default=0.0)
    _rescan_requested: bool = field(init=False, default=False)
    _bad_names: set[str] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.tracker = SettleTracker(self.config.settle_seconds, clock=self.clock, name=self.config.name,
                                     unreadable_grace=self.config.unreadable_grace_seconds)

    @property
    def name(self) -> str:
        return self.config.name

    def start(self) -> int:
        """Start the observer and run the start-up scan (photos dropped while we were down).

        Returns how many new or changed files the scan found.
        """
        self.check_root(force=True)
        if self.paused_reason is not None:
            return 0
        self._start_watcher()
        return self.rescan()

    def stop(self) -> None:
        """Stop the observer thread."""
        if self.watcher is not None:
            self.watcher.stop()

    def _start_watcher(self) -> None:
        cfg = self.config
        self.watcher = FolderWatcher(cfg.name, cfg.input, cfg.recursive, cfg.observer,
                                     on_path=lambda rel: self.events.put((cfg.name, rel)),
                                     poll_interval=cfg.poll_interval_seconds,
                                     on_overflow=lambda: self.events.put((cfg.name, RESCAN_NOW)))
        self.watcher.start()

    def observer_alive(self) -> bool:
        """Return True when the watch is paused (nothing to observe) or its observer runs."""
        return self.paused_reason is not None or (self.watcher is not None and self.watcher.is_alive())

    def check_root(self, force: bool = False) -> None:
        """Pause the watch while its input root is gone or unreadable; resume when it is back."""
        now = self.clock()
        if not force and now - self._last_root_check < ROOT_CHECK_SECONDS:
            return
        self._last_root_check = now
        reason = root_available(self.config.input)
        if reason and self.paused_reason is None:
            self._pause(reason)
        elif reason is None and self.paused_reason is not None:
            self._resume()

    def _pause(self, reason: str) -> None:
        self.paused_reason = reason
        log.warning("%s: pausing this watch: input folder %s: %s. It resumes when the folder is back.",
                    self.name, self.config.input, reason)
        self.ledger.set_notice(paused_notice_key(self.name), f"paused: {self.config.input}: {reason}")

    def _resume(self) -> None:
        log.info("%s: input folder %s is back; resuming the watch", self.name, self.config.input)
        self.paused_reason = None
        self.ledger.clear_notice(paused_notice_key(self.name))
        if self.watcher is None:
            self._start_watcher()
        else:
            self.watcher.restart()
        self.rescan()

    def keep_observer_alive(self) -> None:
        """Restart a dead observer thread (it logs); the daemon never carries on half-blind."""
        if self.paused_reason is None and self.watcher is not None and self.watcher.ensure_running():
            self.rescan()

    def rescan_if_due(self) -> None:
        """Rescan now if the observer lost events, else every rescan_seconds as a safety net (missed events)."""
        if self.paused_reason is not None:
            return
        if self._rescan_requested or self.clock() - self._last_scan >= self.config.rescan_seconds:
            self.rescan()

    def rescan(self) -> int:
        """Scan the whole input tree; track every file the ledger does not know in this form."""
        self._last_scan = self.clock()
        self._rescan_requested = False
        known = self.ledger.known_files(self.name)
        look_again = self._readable_again()
        problems: dict[str, str] = {}

        def on_problem(rel_dir: str, exc: OSError) -> None:
            problems.setdefault(rel_dir, describe_folder_error(exc))
        found = 0
        try:
            for stat in scan_tree(self.config.input, self.config.recursive, self.config.include,
                                  self.config.exclude,
                                  on_problem=on_problem):
                if self._unusable_name(stat.rel_path):
                    continue
                if known.get(stat.rel_path) != (stat.size, stat.mtime_ns) or stat.rel_path in look_again:
                    self.tracker.note(stat)
                    found += 1
        except RootUnavailable as exc:
            self._pause(str(exc))
            return found
        self._report_folders(problems)
        self.scanned = True
        if found:
            log.info("%s: scan found %d new or changed file(s)", self.name, found)
        return found

    def _readable_again(self) -> set[str]:
        """Return the files refused because we could not read them (newest version) that can be opened now.

        A rescan looks at them again even though their size and mtime are
        the same: `chmod` changes neither, and a fixed permission must be
        seen. Files still unreadable are not tracked again, so they never
        keep `run --once` waiting.
        """
        refused = [p for p in self.ledger.photos_in_state(PhotoState.REJECTED, watch=self.name)
                   if p.reason == NO_PERMISSION]
        return {p.rel_path for p in refused
                if self.ledger.latest_version(self.name, p.rel_path) == p and self._opens(p.rel_path)}

    def _opens(self, rel_path: str) -> bool:
        """Return True if the file can be opened for reading now (as a plain file)."""
        try:
            fd, _info = open_plain_file(self.config.input / rel_path)
        except OSError:
            return False
        os.close(fd)
        return True

    def _report_folders(self, problems: dict[str, str]) -> None:
        """Show every folder the scan could not read as a notice; clear the notices of folders that read again."""
        prefix = folder_notice_key(self.name, "")
        current = {folder_notice_key(self.name, printable(rel, keep=10_000)): rel for rel in problems}
        for key, rel in current.items():
            message = (f"{self.name}: cannot read the folder {printable(rel or '.')}: {problems[rel]}; "
                       "the photos in it are not seen")
            if self.ledger.set_notice(key, message):
                log.warning("%s", message)
        for key in self.ledger.notices():
            if key.startswith(prefix) and key not in current:
                self.ledger.clear_notice(key)
                log.info("%s: the folder %s can be read again", self.name, printable(key[len(prefix):] or "."))

    def note_event(self, rel_path: str) -> None:
        """An observer saw `rel_path` change: track it if it is a candidate we do not know as is.

        RESCAN_NOW instead of a path (the observer lost events) asks for a
        rescan on this pass.
        """
        if rel_path == RESCAN_NOW:
            self._rescan_requested = True
            return
        if self.paused_reason is not None:
            return
        if not is_candidate(rel_path, self.config.include, self.config.exclude) or self._unusable_name(rel_path):
            return
        stat = stat_candidate(self.config.input, rel_path)
        if stat is None:
            return
        known = self.ledger.latest_version(self.name, rel_path)
        if known is None or (known.size, known.mtime_ns) != (stat.size, stat.mtime_ns) or rel_path in self.tracker:
            self.tracker.note(stat)

    def _unusable_name(self, rel_path: str) -> bool:
        """Return True (and say so once) for a name that is not valid UTF-8 (Latin-1 from old shares).

        Such a name cannot be stored, sent or mirrored faithfully; the file
        is left alone and reported so that a person can rename it.
        """
        try:
            rel_path.encode("utf-8")
            return False
        except UnicodeEncodeError:
            pass
        shown = rel_path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if shown not in self._bad_names:
            self._bad_names.add(shown)
            log.warning("%s: cannot send %s: its name is not valid UTF-8; rename the file", self.name, shown)
            self.ledger.set_notice(f"name:{self.name}:{shown}",
                                   f"{self.name}: {shown} has a name that is not valid UTF-8; rename it to send it")
        return True

    def settled(self, proven: Callable[[FileStat], bool] | None = None) -> list[FileStat]:
        """Return the files that have settled since the last call (and stop tracking them).

        `proven`: whether a file, as it is now, already passed a check made while it settled.
        """
        if self.paused_reason is not None:
            return []
        done = self.tracker.poll(self.config.input, proven=proven)
        for stat in done:
            self.tracker.forget(stat.rel_path)
        return done

    def steady(self) -> list[FileStat]:
        """Return the files still settling that look finished: worth checking already (`SettleTracker.steady`)."""
        return [] if self.paused_reason is not None else self.tracker.steady()

    def pending(self) -> int:
        """Return how many files are still settling."""
        return self.tracker.pending()

    def seconds_to_next_settle(self) -> float | None:
        """How long until a file settling here may be due (None if none is settling, or the watch is paused)."""
        return None if self.paused_reason is not None else self.tracker.seconds_to_next_due()
