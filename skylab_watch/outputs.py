"""Where output files go and how they get there without ever being half-written.

Outputs mirror the input tree: `a/b/IMG_1.jpg` under a watch folder becomes
`a/b/IMG_1.png` under its output folder. Every file is written to a hidden
temp name beside its destination, flushed to disk, optionally checked, and
only then renamed into place, so a crash or power cut leaves either the old
file or the complete new one under the final name, never a fragment.

A name is only reused when the caller says the daemon itself wrote that file
(`may_replace`); a file someone else put there is never overwritten, the new
one gets `IMG_1 (1).png` instead.

Outputs never leave the output root: the folders below it are created and
entered by descriptor without following links, and a link found where a
folder or the file must go is an error naming it (`LinkInTheWay`). Temp
names are short whatever the final name, so only a final name the folder
truly cannot hold fails, with ENAMETOOLONG.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import BinaryIO

TEMP_PREFIX = ".skw-"
TEMP_SUFFIX = ".skylab-part"
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

# errno values meaning "this filesystem does not do hard links".
_NO_HARD_LINKS = {errno.EPERM, errno.EACCES, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class LinkInTheWay(OSError):
    """A symbolic link stands where an output folder or file must go.

    Writing through it could put the file anywhere, so it is never followed:
    the photo fails at once with a reason naming the link, for a person to
    remove it (waiting will not change it).
    """

    def __init__(self, link: Path) -> None:
        super().__init__(errno.ELOOP, "a symbolic link stands where an output folder or file must go; "
                                      "outputs are never written through links below the output folder",
                         str(link))


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


def temp_name_for(final_name: str, tag: str) -> str:
    """Return the hidden temp name for a file to be named `final_name`: `.skw-<12 hex>.skylab-part`.

    Short whatever the final name (29 bytes), so a 250-byte input name or a
    long background label never makes a temp name over the folder's NAME_MAX;
    the same for the same (final name, tag), so a retry after a crash
    overwrites the leftover instead of adding another one.
    """
    key = f"{final_name}\0{tag}".encode("utf-8", "surrogateescape")
    return f"{TEMP_PREFIX}{hashlib.sha256(key).hexdigest()[:12]}{TEMP_SUFFIX}"


def temp_path_for(final: Path, tag: str) -> Path:
    """Return the hidden temp path beside `final` (see `temp_name_for`)."""
    return final.parent / temp_name_for(final.name, tag)


def write_atomically(
    final: Path,
    write: Callable[[BinaryIO], None],
    tag: str = "w",
    check: Callable[[int], None] | None = None,
    root: Path | None = None,
) -> tuple[int, str]:
    """Write a file through a temp name and rename it to `final`; return its (size, sha256 hex).

    `write(sink)` writes the content into the open temp file; `check(fd)`
    (for example `imaging.check_decodes`) may reject it by raising, reading
    the descriptor from its start. Whatever fails, the temp is removed and
    the exception re-raised, and `final` keeps whatever it held before.

    `root` is the output root (`final.parent` if not given): the folders
    between it and `final` are created and entered without following links,
    and the temp and the rename happen relative to the last one, so nothing
    is ever written outside the root (see `open_output_folder`). Raise
    LinkInTheWay if a link stands where a folder or the file must go, and an
    OSError with ENAMETOOLONG if the folder cannot hold a name that long.
    """
    with open_output_folder(final.parent if root is None else root, final.parent) as folder:
        _check_name_fits(folder, final)
        temp = temp_name_for(final.name, tag)
        try:
            size, digest = _write_temp(folder, temp, write, check)
            _refuse_link(folder, final.name, final)
            os.rename(temp, final.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            _remove_quietly(folder, temp)
            raise
        _fsync_descriptor(folder)
    return size, digest


def _write_temp(folder: int, temp: str, write: Callable[[BinaryIO], None],
                check: Callable[[int], None] | None) -> tuple[int, str]:
    """Create the temp file afresh in `folder` (never through a link), fill, flush and check it; return its
    (size, sha256 hex)."""
    _remove_quietly(folder, temp)  # a crash's leftover, or anything planted under the name
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    with os.fdopen(os.open(temp, flags, 0o666, dir_fd=folder), "w+b") as sink:
        write(sink)
        sink.flush()
        os.fsync(sink.fileno())
        if check is not None:
            check(sink.fileno())
        sink.seek(0)
        digest = hashlib.sha256()
        for chunk in iter(lambda: sink.read(1 << 20), b""):
            digest.update(chunk)
        return sink.tell(), digest.hexdigest()


def _remove_quietly(folder: int, name: str) -> None:
    """Remove `name` from `folder` if it is there (a link is removed, not followed)."""
    try:
        os.unlink(name, dir_fd=folder)
    except FileNotFoundError:
        pass


def _check_name_fits(folder: int, final: Path) -> None:
    """Raise OSError(ENAMETOOLONG) when `final`'s name is longer than its folder can hold.

    Asked before any byte is written, so the photo fails with that reason
    instead of a half-written temp and a confusing error from deeper down.
    """
    size = len(os.fsencode(final.name))
    try:
        limit = os.fpathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255  # unknown: the limit of every common Linux filesystem
    if limit > 0 and size > limit:
        raise OSError(errno.ENAMETOOLONG, f"the output name is {size} bytes, longer than the {limit} bytes "
                                          "its folder can hold", str(final))


def _refuse_link(folder: int, name: str, shown: Path) -> None:
    """Raise LinkInTheWay if `name` in `folder` is a symbolic link (the final name must be a plain file)."""
    if _is_link(folder, name):
        raise LinkInTheWay(shown)


def _is_link(folder: int, name: str) -> bool:
    """Return True if `name` in `folder` is a symbolic link (False if it is not there at all)."""
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


@contextmanager
def open_output_folder(root: Path, folder: Path) -> Iterator[int]:
    """Given the output root and a folder under it, yield a descriptor of that folder, creating what is missing.

    The root is made if missing and opened as configured (it and its parents
    may be links: the user's choice); every folder below it is created with `mkdir(dir_fd=)` and
    entered with O_NOFOLLOW, one component at a time, so a link swapped in
    at any moment can never redirect a write. Raise LinkInTheWay naming a
    link found on the way, ValueError if `folder` is not under `root`.
    """
    parts = PurePath(folder).relative_to(root).parts
    if ".." in parts:
        raise ValueError(f"{folder} climbs out of the output folder {root}")
    Path(root).mkdir(parents=True, exist_ok=True)
    fd = os.open(root, _DIRECTORY)
    try:
        here = Path(root)
        for part in parts:
            here = here / part
            child = _enter_folder(fd, part, here)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _enter_folder(parent: int, name: str, shown: Path) -> int:
    """Create `name` in `parent` if missing and return a descriptor of it, never following a link."""
    try:
        try:
            os.mkdir(name, dir_fd=parent)
        except FileExistsError:
            pass
        return os.open(name, _DIRECTORY | _NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if _is_link(parent, name):
            raise LinkInTheWay(shown) from exc
        raise OSError(exc.errno, exc.strerror, str(shown)) from exc


def _fsync_descriptor(fd: int) -> None:
    """Flush an open folder's entries to disk (where the filesystem allows it)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise


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
    Works across filesystems. A symbolic link below dest_root where a folder
    must go is refused (LinkInTheWay), as for outputs: an original never
    lands outside the archive folder.
    """
    target = mirrored_path(dest_root, rel_path, src.name)
    with open_output_folder(dest_root, target.parent):
        pass  # folders below the archive root made without following a link; LinkInTheWay if one is there
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
