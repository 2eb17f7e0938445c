"""Opening a file only as the plain file it was seen to be, and reading a bounded number of its bytes.

Between the moment a photo is looked at and the moment its bytes are read,
anyone with access to the share may swap it: for a symlink (to /dev/zero,
say), a FIFO (a read would block for ever) or a much bigger file. So files
are opened without following a final symlink and without blocking, checked
with `fstat` on the open descriptor (what was opened, not what the path
names a moment later), and read up to a known bound only.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK = 1024 * 1024


class NotPlainFile(OSError):
    """The path names a symlink, FIFO, device or folder, not a regular file: never read it."""


def open_plain_file(path: str | Path) -> tuple[int, os.stat_result]:
    """Given a path, return an open read-only descriptor of the regular file there and its fstat.

    Raise NotPlainFile for a symlink (O_NOFOLLOW), a FIFO or device (the
    open does not block: O_NONBLOCK), or a folder; other OSErrors
    (FileNotFoundError, PermissionError...) pass through. The caller closes
    the descriptor.
    """
    try:
        fd = os.open(path, OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotPlainFile(errno.ELOOP, "a symbolic link, not a regular file", str(path)) from exc
        if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EISDIR):
            raise NotPlainFile(exc.errno, "not a regular file (a folder, socket or device)", str(path)) from exc
        raise
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotPlainFile(errno.EINVAL, f"not a regular file ({_kind(info.st_mode)})", str(path))
    return fd, info


def _kind(mode: int) -> str:
    """Name the kind of a file that is not regular, for a reason a person reads."""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a link")):
        if test(mode):
            return name
    return "an unusual kind of file"


def read_at_most(fd: int, limit: int) -> bytes:
    """Read from `fd` until end of file or `limit` bytes, whichever comes first; return what was read.

    Read `expected + 1` to learn whether a file has grown past what was
    recorded: a result longer than `expected` says so, without ever reading
    an endless file.
    """
    parts: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(_CHUNK, left))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
