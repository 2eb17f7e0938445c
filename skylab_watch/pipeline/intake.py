"""Intake: a settled file becomes a photo version in the ledger.

Given a file whose size and mtime have stopped changing, decide what it is:
the same content we already know (nothing to do), a new version, a
duplicate of content already sent, a rejected file (with its reason), or a
photo ready to batch.
"""

from __future__ import annotations

import logging
from pathlib import Path

from skylab_watch.config import WatchConfig
from skylab_watch.ledger import Photo, PhotoState
from skylab_watch.logs import fields
from skylab_watch.pipeline.context import Context
from skylab_watch.watch.scan import FileStat
from skylab_watch.watch.validate import VANISHED, Inspection, inspect_photo, make_resized_copy

log = logging.getLogger("skylab_watch")


def record_settled_file(ctx: Context, watch: WatchConfig, stat: FileStat) -> Photo | None:
    """Given a settled file, record what it is and return the new photo row (None if nothing new)."""
    known = ctx.ledger.latest_version(watch.name, stat.rel_path)
    if known and (known.size, known.mtime_ns) == (stat.size, stat.mtime_ns):
        return None
    path = watch.input / stat.rel_path
    inspection = inspect_photo(path)
    if inspection.reason == VANISHED or not path.exists():
        log.debug("%s: %s vanished before it could be checked", watch.name, stat.rel_path)
        return None
    if known and known.md5 == inspection.md5:
        ctx.ledger.update_photo(known.id, size=inspection.size, mtime_ns=inspection.mtime_ns)
        log.debug("%s: %s was touched but its content is unchanged", watch.name, stat.rel_path)
        return None
    return _record_inspection(ctx, watch, stat.rel_path, inspection, path)


def _record_inspection(ctx: Context, watch: WatchConfig, rel_path: str, found: Inspection,
                       path: Path) -> Photo:
    upload_path = None
    if not found.ok and found.oversized and watch.resize_oversized:
        found, upload_path = _resized(ctx, watch, rel_path, path, found)
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


def _resized(ctx: Context, watch: WatchConfig, rel_path: str, path: Path,
             original: Inspection) -> tuple[Inspection, str | None]:
    """Make a downscaled copy to upload instead of an oversized original; the original is untouched."""
    dest = ctx.staging_dir / watch.name / f"{original.md5}{path.suffix.lower()}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    copy = make_resized_copy(path, dest)
    if not copy.ok:
        return original, None
    log.info("%s: %s is too large for Studio (%s); sending a downscaled copy (%s x %s px)",
             watch.name, rel_path, original.reason, copy.width, copy.height)
    # Identity stays the original's (size, mtime, md5): only the bytes sent differ.
    merged = Inspection(ok=True, reason=None, size=original.size, mtime_ns=original.mtime_ns,
                        md5=original.md5, width=copy.width, height=copy.height, oversized=True)
    return merged, str(dest)


def _add(ctx: Context, watch: WatchConfig, rel_path: str, found: Inspection, state: str,
         reason: str | None = None, duplicate_of: int | None = None, upload_path: str | None = None) -> Photo:
    return ctx.ledger.add_photo(watch.name, rel_path, found.size, found.mtime_ns, found.md5, state,
                                reason=reason, width=found.width, height=found.height,
                                duplicate_of=duplicate_of, upload_path=upload_path)
