"""Watching hot folders: discover files, wait until they are fully written, and validate them.

The pieces, each usable alone by the daemon and the doctor command:

- `filters`: which relative paths are candidates (hidden, temporary files out).
- `scan`: a fast, symlink-free listing of a watched folder (the rescan safety net).
- `observers`: native or polling watchdog observers that only *report* paths.
- `settle`: when a file has stopped changing and its header is readable.
- `validate`: whether Studio will accept a settled file, and resized copies.

Nothing here touches the ledger; the reconciler records what these report.
"""

from skylab_watch.watch.filters import DEFAULT_EXCLUDE, is_candidate, matches_any
from skylab_watch.watch.observers import MODES, NATIVE, POLLING, FolderWatcher, count_folders, inotify_watch_limit
from skylab_watch.watch.scan import (
    FileStat,
    RootUnavailable,
    path_crosses_symlink,
    require_root,
    root_available,
    scan_tree,
    stat_candidate,
)
from skylab_watch.watch.settle import SettleTracker
from skylab_watch.watch.validate import (
    EXTENSIONS,
    MAX_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    Inspection,
    header_readable,
    inspect_photo,
    make_resized_copy,
)

__all__ = [
    "DEFAULT_EXCLUDE",
    "EXTENSIONS",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MODES",
    "NATIVE",
    "POLLING",
    "FileStat",
    "FolderWatcher",
    "Inspection",
    "RootUnavailable",
    "SettleTracker",
    "count_folders",
    "header_readable",
    "inotify_watch_limit",
    "inspect_photo",
    "is_candidate",
    "make_resized_copy",
    "matches_any",
    "path_crosses_symlink",
    "require_root",
    "root_available",
    "scan_tree",
    "stat_candidate",
]
