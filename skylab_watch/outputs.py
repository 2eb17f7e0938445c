"""Where output files go and how they get there without ever being half-written.

Outputs mirror the input tree: `a/b/IMG_1.jpg` under a watch folder becomes
`a/b/IMG_1.png` under its output folder. Every file is written to a hidden
temp name beside its destination, flushed to disk, optionally checked, and
only then renamed into place, so a crash or power cut leaves either the old
file or the complete new one under the final name, never a fragment.

A name is only reused when the caller says the daemon itself wrote that file
(`may_replace`); a file someone else put there is never overwritten, the new
one gets `IMG_1 (1).png` instead.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath

TEMP_SUFFIX = ".skylab-part"

# errno values meaning "this filesystem does not do hard links".
_NO_HARD_LINKS = {errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def mirrored_path(output_root: Path, rel_path: str, name: str) -> Path:
    """Given the input's path relative to its watch folder, return `name` in the mirrored folder under output_root.

    Raise ValueError if rel_path is absolute or climbs out with `..`: the
    path comes from the ledger and must never place a file outside the root.
    """
    rel = PurePath(rel_path)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"{rel_path!r} must be a path inside the watch folder")
    return Path(output_root).joinpath(*rel.parent.parts, name)


def free_name(path: Path, may_replace: Callable[[Path], bool]) -> Path:
    """Return `path` if it is free or `may_replace` allows reusing it; else the first free `stem (n).ext`.

    `may_replace` is asked only about names that exist, and should answer True
    only for files the daemon wrote itself for the same input.
    """
    for candidate in candidate_names(path):
        if not os.path.lexists(candidate) or may_replace(candidate):
            return candidate
    raise AssertionError("unreachable: itertools.count never ends")


def candidate_names(path: Path) -> Iterator[Path]:
    """Yield `path`, then `IMG_1 (1).png`, `IMG_1 (2).png`, ...: the names tried for an output."""
    yield path
    for n in itertools.count(1):
        yield _numbered(path, n)


def _numbered(path: Path, n: int) -> Path:
    """Return `IMG_1 (n).png` for `IMG_1.png`."""
    return path.with_name(f"{path.stem} ({n}){path.suffix}")


def temp_path_for(final: Path, tag: str) -> Path:
    """Return the hidden temp name beside `final`.

    It is the same for the same (final, tag), so a retry after a crash
    overwrites the leftover instead of adding another one.
    """
    return final.parent / f".{final.name}.{tag}{TEMP_SUFFIX}"


def write_atomically(
    final: Path,
    write: Callable[[Path], None],
    tag: str = "w",
    check: Callable[[Path], None] | None = None,
) -> tuple[int, str]:
    """Write a file through a temp name and rename it to `final`; return its (size, sha256 hex).

    `write(temp)` produces the content; `check(temp)` (for example
    `imaging.load_checked`) may reject it by raising. Whatever fails, the
    temp is removed and the exception re-raised, and `final` keeps whatever
    it held before.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(final, tag)
    try:
        write(temp)
        _fsync_file(temp)
        if check is not None:
            check(temp)
        size, digest = temp.stat().st_size, sha256_file(temp)
        os.replace(temp, final)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync_directory(final.parent)
    return size, digest


def _fsync_file(path: Path) -> None:
    """Flush a file's content to disk, so the rename that follows cannot outrun it."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_directory(path: Path) -> None:
    """Flush a directory entry to disk, making a rename or unlink in it durable.

    Some platforms and filesystems (Windows, some network mounts) cannot open
    or fsync a directory; there the rename is as durable as it gets.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    """Return the SHA-256 of a file's content as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def move_atomically(src: Path, dest_root: Path, rel_path: str) -> Path:
    """Move an original into dest_root, mirroring rel_path, and return where it landed.

    Never overwrites: a taken name becomes `IMG_1 (1).jpg`. The source is
    removed only once the destination is complete and on disk, so a crash
    leaves the original in place (at worst a copy in the archive too).
    Works across filesystems.
    """
    target = mirrored_path(dest_root, rel_path, src.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    while True:
        dest = free_name(target, lambda path: _same_file(src, path))
        if os.path.lexists(dest):
            break  # an earlier run linked it here and died before removing the source
        try:
            _place_copy(src, dest)
        except FileExistsError:
            continue  # someone took the name since free_name looked; pick the next one
        break
    fsync_directory(dest.parent)
    src.unlink(missing_ok=True)  # already gone if the no-hard-link fallback renamed it
    fsync_directory(src.parent)
    return dest


def _same_file(a: Path, b: Path) -> bool:
    """Return True when both names lead to the very same file (a hard link we made)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _place_copy(src: Path, dest: Path) -> None:
    """Make `dest` a complete copy of `src` (a hard link on the same filesystem);
    raise FileExistsError if dest is taken."""
    try:
        _link_no_clobber(src, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_then_link(src, dest)


def _copy_then_link(src: Path, dest: Path) -> None:
    """Copy src across filesystems to a temp beside dest, flush it, then give it dest's name."""
    temp = temp_path_for(dest, "move")
    try:
        shutil.copy2(src, temp)
        _fsync_file(temp)
        _link_no_clobber(temp, dest)
    finally:
        temp.unlink(missing_ok=True)


def _link_no_clobber(src: Path, dest: Path) -> None:
    """Give src the extra name dest, failing with FileExistsError rather than replacing an existing file.

    A hard link is the only portable rename that refuses to overwrite. Where
    the filesystem has no hard links, fall back to a rename after an
    existence check (a tiny race window, acceptable there).
    """
    try:
        os.link(src, dest)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "file exists", str(dest)) from exc
        os.rename(src, dest)


def remove_stale_temps(folder: Path, recursive: bool = False) -> int:
    """Delete leftover `*.skylab-part` temp files in a folder (and below, if recursive); return how many.

    Temps are only left by a crash mid-write; call this at start-up, before
    any writer runs, or a live temp could be deleted under it.
    """
    pattern = f"**/*{TEMP_SUFFIX}" if recursive else f"*{TEMP_SUFFIX}"
    removed = 0
    for temp in Path(folder).glob(pattern):
        if temp.is_file() and not temp.is_symlink():
            temp.unlink(missing_ok=True)
            removed += 1
    return removed
