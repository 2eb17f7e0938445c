"""Discovery: list the files of a watched folder, fast and without following links.

The scan is the safety net under the observers: it runs at start-up and
periodically, and finds whatever events were missed (daemon down, inotify
overflow, a share that reconnected). It must stay cheap on trees with tens
of thousands of photos, so it uses `os.scandir` and the stat data it already
holds, and never descends into excluded folders.

Symlinks are never followed: a link could point outside the studio's folder
or loop back into it, and the originals we may later delete or archive must
really live under the root.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from skylab_watch.errors import SkylabWatchError
from skylab_watch.watch.filters import matches_any

log = logging.getLogger(__name__)


class RootUnavailable(SkylabWatchError, OSError):
    """The watched folder itself is missing or cannot be listed.

    Worth retrying later: it is usually an unmounted share or a folder being
    recreated. `strerror` holds a reason a studio manager can act on.
    """


OnProblem = Callable[[str, OSError], None]
"""Told (folder relative to the root, error) of a folder the scan could not read in full."""


def _ignore(_rel_dir: str, _exc: OSError) -> None:
    """The default `on_problem`: the scan's caller does not want to know."""


def describe_folder_error(exc: OSError) -> str:
    """Given why a folder (or an entry in it) could not be read, return a reason a person can act on."""
    if exc.errno == errno.ENAMETOOLONG:
        return ("a path in it is longer than the system allows (PATH_MAX 4096 bytes, or 255 bytes for one name); "
                "shorten the folder names")
    if isinstance(exc, PermissionError):
        return "permission denied; let the daemon's user read it"
    return exc.strerror or str(exc)


@dataclass(frozen=True)
class FileStat:
    """What one look at a file showed: its path under the root, size and mtime."""

    rel_path: str
    size: int
    mtime_ns: int


def describe_root_error(exc: OSError) -> str:
    """Given the error from opening a watched folder, return a reason a person can act on."""
    if isinstance(exc, FileNotFoundError):
        return "the folder is missing (unmounted share?)"
    if isinstance(exc, NotADirectoryError):
        return "the path is not a folder"
    return f"the folder cannot be read: {exc.strerror or exc}"


def require_root(root: Path) -> None:
    """Raise `RootUnavailable` unless the watched folder can be listed.

    Listing (not just `stat`) is tried because a stale network mount or a
    folder without the execute bit passes `exists()` but cannot be scanned.
    """
    try:
        with os.scandir(root) as entries:
            next(entries, None)
    except OSError as exc:
        raise RootUnavailable(exc.errno, describe_root_error(exc), str(root)) from exc


def root_available(root: Path) -> str | None:
    """Given a watched folder, return None if it can be listed, else the reason it cannot."""
    try:
        require_root(root)
    except RootUnavailable as exc:
        return exc.strerror
    return None


def scan_tree(
    root: Path,
    recursive: bool,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    on_problem: OnProblem = _ignore,
) -> Iterator[FileStat]:
    """Given a watched folder, return an iterator over its candidate regular files.

    The root is opened before returning, so a missing or unreadable root
    raises `RootUnavailable` at the call, not on first iteration. A file
    deleted mid-scan is skipped quietly; a folder that cannot be read (a
    private subfolder, a path longer than PATH_MAX) is skipped and told to
    `on_problem`, so the caller can show it: its photos are not seen.
    """
    root = Path(root)
    try:
        top = os.scandir(root)
    except OSError as exc:
        raise RootUnavailable(exc.errno, describe_root_error(exc), str(root)) from exc
    return _walk(root, top, recursive, include, exclude, on_problem)


def _walk(
    root: Path,
    top: Iterator[os.DirEntry[str]],
    recursive: bool,
    include: Sequence[str],
    exclude: Sequence[str],
    on_problem: OnProblem,
) -> Iterator[FileStat]:
    """Walk with an explicit stack of folders, yielding files; `top` is the opened root.

    Subfolders are opened only when their turn comes, so a folder with
    thousands of subfolders never holds thousands of descriptors open.
    """
    pending: list[str] = []
    rel_dir = ""
    entries: Iterator[os.DirEntry[str]] | None = top
    while entries is not None:
        with entries:  # type: ignore[attr-defined]
            for entry in _entries_of(rel_dir, entries, on_problem):
                rel_path = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
                found = _classify(entry, rel_path, recursive, include, exclude, on_problem)
                if isinstance(found, FileStat):
                    yield found
                elif found == "dir":
                    pending.append(rel_path)
        entries = None
        while pending and entries is None:
            rel_dir = pending.pop()
            entries = _open_dir(root, rel_dir, on_problem)


def _entries_of(rel_dir: str, entries: Iterator[os.DirEntry[str]],
                on_problem: OnProblem) -> Iterator[os.DirEntry[str]]:
    """Yield directory entries; a folder that breaks mid-listing is told to `on_problem`."""
    try:
        yield from entries
    except OSError as exc:
        on_problem(rel_dir, exc)


def _open_dir(root: Path, rel_path: str, on_problem: OnProblem) -> Iterator[os.DirEntry[str]] | None:
    """Open a subfolder for listing, or return None if it cannot be read (told to `on_problem`).

    A folder deleted since it was listed is no problem: it is simply gone.
    """
    try:
        return os.scandir(root / rel_path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        on_problem(rel_path, exc)
        return None


def _classify(
    entry: os.DirEntry[str],
    rel_path: str,
    recursive: bool,
    include: Sequence[str],
    exclude: Sequence[str],
    on_problem: OnProblem,
) -> FileStat | str | None:
    """Return a FileStat for a candidate file, "dir" for a folder to descend into, else None.

    Parent folders were already checked against `exclude` when they were
    entered, so only this entry's own name needs matching here.
    """
    try:
        if entry.is_symlink() or matches_any(entry.name, exclude):
            return None
        if entry.is_dir(follow_symlinks=False):
            return "dir" if recursive else None
        if not entry.is_file(follow_symlinks=False):
            return None
        if include and not matches_any(entry.name, include):
            return None
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # deleted mid-scan: nothing to say
    except OSError as exc:
        on_problem(rel_path.rpartition("/")[0], exc)
        return None
    return FileStat(rel_path, info.st_size, info.st_mtime_ns)


def path_crosses_symlink(root: Path, rel_path: str) -> bool:
    """Given a path under the root, return True if it or any folder above it is a symlink.

    Missing components count as not symlinks; callers deal with missing
    files separately.
    """
    current = Path(root)
    for part in rel_path.split("/"):
        current = current / part
        try:
            if stat.S_ISLNK(os.lstat(current).st_mode):
                return True
        except OSError:
            return False
    return False


def stat_candidate(root: Path, rel_path: str) -> FileStat | None:
    """Given a path under the root, return its current FileStat, or None if it is not a plain file now.

    None covers a vanished file, a folder, a device and a symlink (itself or
    through a linked folder), so callers never act on something the scan
    would not have listed.
    """
    try:
        info = os.lstat(Path(root) / rel_path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or path_crosses_symlink(root, rel_path):
        return None
    return FileStat(rel_path, info.st_size, info.st_mtime_ns)
