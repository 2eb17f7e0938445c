"""Intake: a settled file becomes a photo version in the ledger.

Given a file whose size and mtime have stopped changing, decide what it is:
the same content we already know (nothing to do), a new version, a
duplicate of content already sent, a rejected file (with its reason), or a
photo ready to batch.

The work is split in two so that no file can stall the work loop: the
costly half (`check_settled_file`: reading, decoding, resizing) touches no
ledger and runs on the inspection pool (`pipeline.inspections`); the
loop-side half (`needs_inspection`, `record_checked`) reads and writes the
ledger and is quick.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from skylab_watch.config import WatchConfig
from skylab_watch.ledger import Photo, PhotoState
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.watch.scan import FileStat
from skylab_watch.watch.validate import (
    NO_PERMISSION, VANISHED, Inspection, inspect_photo, make_resized_copy, too_slow_reason,
)

log = logging.getLogger("skylab_watch")


@dataclass(frozen=True)
class Checked:
    """What the check of one settled file found: the inspection, and the resized copy to send if one was made."""

    stat: FileStat
    inspection: Inspection
    upload_path: str | None = None


def needs_inspection(ctx: Context, watch: WatchConfig, stat: FileStat) -> bool:
    """Return True unless the ledger already knows this file in this form (same size and mtime).

    A file refused because we could not read it is looked at again whatever
    its mtime: `chmod` does not change the mtime, and a fixed permission must be seen.
    """
    known = ctx.ledger.latest_version(watch.name, stat.rel_path)
    if known is None or (known.size, known.mtime_ns) != (stat.size, stat.mtime_ns):
        return True
    return known.state == PhotoState.REJECTED and known.reason == NO_PERMISSION


def check_settled_file(watch: WatchConfig, stat: FileStat, staging_dir: Path, time_bound: float) -> Checked:
    """Given a settled file, inspect it (and make a resized copy if it is oversized and the watch wants one).

    Runs on a worker thread: it reads and decodes, but never touches the
    ledger. `time_bound` caps the inspection (libvips is stopped past it).
    """
    path = watch.input / stat.rel_path
    found = inspect_photo(path, time_bound=time_bound, decode_oversized=watch.resize_oversized)
    if not found.ok and found.oversized and watch.resize_oversized:
        found, upload_path = _resized(watch, stat.rel_path, path, found, staging_dir)
        return Checked(stat, found, upload_path)
    return Checked(stat, found)


def check_ahead(watch: WatchConfig, stat: FileStat, time_bound: float) -> Checked:
    """Check a file that is still settling, on a worker thread: the same inspection, but an oversized photo
    is not decoded or resized (nothing is written for a result that may not count)."""
    found = inspect_photo(watch.input / stat.rel_path, time_bound=time_bound, decode_oversized=False)
    return Checked(stat, found)


def record_checked(ctx: Context, watch: WatchConfig, checked: Checked) -> Photo | None:
    """Given what the check of a file found, record it; return the new photo row (None if nothing new)."""
    rel_path, inspection = checked.stat.rel_path, checked.inspection
    path = watch.input / rel_path
    if inspection.reason == VANISHED or not path.exists():
        log.debug("%s: %s vanished before it could be checked", watch.name, rel_path)
        return None
    known = ctx.ledger.latest_version(watch.name, rel_path)
    if known and known.md5 == inspection.md5:
        ctx.ledger.update_photo(known.id, size=inspection.size, mtime_ns=inspection.mtime_ns,
                                device=inspection.device, inode=inspection.inode)
        log.debug("%s: %s was touched but its content is unchanged", watch.name, rel_path)
        return None
    return _record_inspection(ctx, watch, rel_path, inspection, checked.upload_path)


def record_too_slow(ctx: Context, watch: WatchConfig, stat: FileStat, seconds: float) -> Photo:
    """The check of a file ran past its time bound: reject it (the loop went on meanwhile)."""
    found = Inspection(False, too_slow_reason(seconds), stat.size, stat.mtime_ns, "", None, None, oversized=False)
    return _record_inspection(ctx, watch, stat.rel_path, found, None)


def record_settled_file(ctx: Context, watch: WatchConfig, stat: FileStat, time_bound: float) -> Photo | None:
    """Check and record a settled file at once, on the calling thread (for callers without a pool)."""
    if not needs_inspection(ctx, watch, stat):
        return None
    return record_checked(ctx, watch, check_settled_file(watch, stat, ctx.staging_dir, time_bound))


def _record_inspection(ctx: Context, watch: WatchConfig, rel_path: str, found: Inspection,
                       upload_path: str | None) -> Photo:
    if not found.ok:
        photo = _add(ctx, watch, rel_path, found, PhotoState.REJECTED, reason=found.reason)
        log.warning("%s: rejected %s: %s", watch.name, rel_path, found.reason,
                    extra=fields(watch.name, photo=rel_path))
        return photo
    twin = ctx.ledger.find_sent_content(watch.name, found.md5, exclude_path=None) \
        if watch.skip_duplicate_content else None
    if twin is not None and twin.rel_path != rel_path:
        reason = f"same content as {twin.rel_path}, already sent"
        log.info("%s: %s is a copy of %s, which was already sent; not sending it again",
                 watch.name, rel_path, twin.rel_path)
        return _add(ctx, watch, rel_path, found, PhotoState.DUPLICATE, reason=reason, duplicate_of=twin.id)
    photo = _add(ctx, watch, rel_path, found, PhotoState.READY, upload_path=upload_path)
    log.info("%s: %s is ready (%s x %s px, %d bytes)", watch.name, rel_path, found.width, found.height,
             found.size)
    return photo


def _resized(watch: WatchConfig, rel_path: str, path: Path, original: Inspection,
             staging_dir: Path) -> tuple[Inspection, str | None]:
    """Make a downscaled copy to upload instead of an oversized original; the original is untouched."""
    dest = staging_dir / watch.name / f"{original.md5}{path.suffix.lower()}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    copy = make_resized_copy(path, dest)
    if not copy.ok:
        return original, None
    log.info("%s: %s is too large for Studio (%s); sending a downscaled copy (%s x %s px)",
             watch.name, rel_path, original.reason, copy.width, copy.height)
    # Identity stays the original's (size, mtime, md5): only the bytes sent differ.
    merged = Inspection(ok=True, reason=None, size=original.size, mtime_ns=original.mtime_ns,
                        md5=original.md5, width=copy.width, height=copy.height, oversized=True,
                        device=original.device, inode=original.inode)
    return merged, str(dest)


def _add(ctx: Context, watch: WatchConfig, rel_path: str, found: Inspection, state: str,
         reason: str | None = None, duplicate_of: int | None = None, upload_path: str | None = None) -> Photo:
    return ctx.ledger.add_photo(watch.name, rel_path, found.size, found.mtime_ns, found.md5, state,
                                reason=reason, width=found.width, height=found.height,
                                duplicate_of=duplicate_of, upload_path=upload_path,
                                device=found.device, inode=found.inode)
