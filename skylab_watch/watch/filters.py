"""Which paths in a watched folder are photos worth looking at.

Studios' sync tools and cameras leave temporary and hidden files next to the
photos (`.DS_Store`, `IMG_1.jpg.part`, `.sync/` folders). Filtering happens on
the path relative to the watched root, so one rule serves the scan, the
observers and the doctor command alike.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

DEFAULT_EXCLUDE: tuple[str, ...] = (".*", "*~", "*.part", "*.tmp", "*.crdownload")
"""Hidden files and folders, editor backups and half-downloaded files."""


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    """Given one path component, return True if it matches any glob pattern.

    Matching ignores case because studios mix `IMG_1.JPG` and `img_1.jpg`, and
    a pattern written as `*.jpg` is meant to catch both.
    """
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in patterns)


def is_candidate(rel_path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Given a POSIX path relative to the watched root, return True if it may be a photo to send.

    A file is ignored when its name or any folder above it (inside the root)
    matches an exclude pattern, so everything under `.sync/` stays out. When
    `include` is not empty, the file name must match one of its patterns.
    """
    parts = [part for part in rel_path.split("/") if part not in ("", ".")]
    if not parts:
        return False
    if any(matches_any(part, exclude) for part in parts):
        return False
    return not include or matches_any(parts[-1], include)
