"""Delivering one photo: download its result, write every output the
profile asks for beside the mirrored path, then act on the original.

Intent first: the photo is `delivering` before any byte is fetched, and each
output path is recorded as ours before its file is renamed into place, so a
redo after a crash replaces its own files instead of writing `(1)` copies.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyvips

from skylab_watch import imaging, outputs
from skylab_watch.config import WatchConfig
from skylab_watch.ledger import Photo, PhotoState
from skylab_watch.logs import fields
from skylab_watch.pipeline import failures
from skylab_watch.pipeline.context import Context
from skylab_watch.pipeline.outcomes import (
    DISK_TROUBLE, OutputUnwritable, UnsupportedResultUrl, UnusableResult, watch_unavailable,
)
from skylab_watch.studio import UrlExpiredError

log = logging.getLogger("skylab_watch")


@dataclass
class JobLook:
    """What delivery needs to know about a job's profile, fetched once per job.

    The background photos are fetched by the first delivery that needs them, on its worker thread,
    never on the work loop: a slow or hostile store would otherwise hold the whole loop for up to the
    transfer deadline. A failed fetch is raised to that delivery (the outcome table decides) and the
    next delivery tries again.
    """

    profile: dict
    background_stems: list[str]
    fetch_backgrounds: Callable[[], list[pyvips.Image]] = list
    _backgrounds: list[pyvips.Image] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def backgrounds(self) -> list[pyvips.Image]:
        """Return the decoded background photos, fetching them on first use (one fetch at a time)."""
        with self._lock:
            if self._backgrounds is None:
                self._backgrounds = self.fetch_backgrounds()
            return self._backgrounds


def deliver_guarded(ctx: Context, photo: Photo, url: str, look: JobLook) -> str:
    """Deliver a photo (see `deliver_photo`); every error goes through the outcome table. Return its state."""
    try:
        return deliver_photo(ctx, photo, url, look)
    except Exception as exc:  # noqa: BLE001 - the outcome table decides, one place for every stage
        failures.photo_step_failed(ctx, photo, exc, "delivery")
        fresh = ctx.ledger.get_photo(photo.id)
        return fresh.state if fresh is not None else "gone"


def finish_delivered(ctx: Context, photo: Photo) -> str:
    """Act on the original of a photo whose outputs are written; errors go through the outcome table."""
    try:
        return finish_original(ctx, ctx.watch(photo.watch), photo)
    except Exception as exc:  # noqa: BLE001 - the outcome table decides
        failures.photo_step_failed(ctx, photo, exc, f"{ctx.watch(photo.watch).after_success} of the original")
        return PhotoState.DELIVERED


def deliver_photo(ctx: Context, photo: Photo, url: str, look: JobLook) -> str:
    """Write the outputs of a processed photo, then act on its original; return the new state.

    The original is left alone while its watch is paused (its share is
    gone): the photo stays `delivered` until the share is back.
    """
    photo = ctx.ledger.reread_photo(photo)
    if photo.state not in (PhotoState.QUEUED, PhotoState.DELIVERING):
        return photo.state
    ctx.ledger.update_photo(photo.id, state=PhotoState.DELIVERING)
    watch = ctx.watch(photo.watch)
    download = _download(ctx, photo, url)
    try:
        _check_result(download)
        written = [_write_output(ctx, watch, photo, plan, download, look)
                   for plan in imaging.plan_outputs(look.profile, Path(photo.rel_path).suffix,
                                                    look.background_stems)]
    finally:
        download.unlink(missing_ok=True)
    ctx.ledger.update_photo(photo.id, state=PhotoState.DELIVERED, reason=None, trouble_since=None)
    failures.step_succeeded(ctx, photo)
    _outputs_writable_again(ctx, watch.name)
    log.info("%s: wrote %s for %s", watch.name, ", ".join(str(p) for p in written), photo.rel_path,
             extra=fields(watch.name, photo=photo.rel_path))
    if watch.name in ctx.paused_watches:
        log.info("%s: %s is delivered; its original is handled once the watch's folder is back",
                 watch.name, photo.rel_path)
        return PhotoState.DELIVERED
    return finish_original(ctx, watch, ctx.ledger.reread_photo(photo))


def _check_result(path: Path) -> None:
    """Check a downloaded result is within Studio's pixel limits (from its header, before any decode),
    then that it decodes; one that is not is an unusable result (fetched again, a bounded few times)."""
    try:
        imaging.check_pixel_budget(path, "the result")
    except imaging.TooManyPixels as exc:
        raise UnusableResult(str(exc)) from exc
    except (pyvips.Error, imaging.ImageError):
        pass  # an unreadable header is said by the decode check below
    try:
        imaging.check_decodes(path)
    except (pyvips.Error, imaging.ImageError) as exc:
        raise UnusableResult(f"the result does not decode as an image ({str(exc).splitlines()[0]})") from exc


def _outputs_writable_again(ctx: Context, watch: str) -> None:
    """A write went through: end the watch's "cannot write outputs" notice, if it had one."""
    if ctx.ledger.clear_notice(failures.output_notice(watch)):
        log.info("%s: outputs can be written again", watch)


def _download(ctx: Context, photo: Photo, url: str) -> Path:
    """Stream the result to a staging file; a refused (expired) URL is refreshed once."""
    target = ctx.staging_dir / "downloads" / f"{photo.id}.part"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w+b") as sink:
        try:
            ctx.studio.download(url, sink)
        except UrlExpiredError as expired:
            log.info("%s: download link for %s expired; asking Studio for a fresh one", photo.watch,
                     photo.rel_path)
            fresh = ctx.studio.read_photo(photo.require_studio_id())
            if fresh.unusable_url:
                raise UnsupportedResultUrl(fresh.unusable_url[:80]) from expired
            if not fresh.result_url:
                raise
            ctx.studio.download(fresh.result_url, sink)
        sink.flush()
    return target


def _write_output(ctx: Context, watch: WatchConfig, photo: Photo, plan: imaging.OutputPlan,
                  retouched: Path, look: JobLook) -> Path:
    name = imaging.output_name(Path(photo.rel_path).stem, plan)
    wanted = outputs.mirrored_path(watch.output, photo.rel_path, name)
    dest = _claim_output_path(ctx, photo, wanted)
    if dest != wanted:
        log.warning("%s: %s is not skylab-watch's to replace for %s; writing %s instead",
                    watch.name, wanted, photo.rel_path, dest.name)
    strip = imaging.strips_metadata(look.profile, plan)
    try:
        size, sha = outputs.write_atomically(
            dest, lambda sink: imaging.write_output(plan, retouched, look.backgrounds(), sink, strip_metadata=strip),
            tag=str(photo.id), check=imaging.check_decodes, root=watch.output)
    except OSError as exc:
        raise output_error(exc) from exc
    except (pyvips.Error, imaging.ImageError) as exc:
        raise UnusableResult(f"the result could not be rendered ({str(exc).splitlines()[0]})") from exc
    ctx.ledger.record_output(photo.id, str(dest), size, sha)
    return dest


_claims = threading.Lock()


def _claim_output_path(ctx: Context, photo: Photo, wanted: Path) -> Path:
    """Choose the output path for a photo and record it as ours, as one step.

    Two originals may map to one output name (`IMG_1.jpg` and `IMG_1.png`),
    and deliveries run in parallel: the choice and the record happen under
    one lock, and a path another file has claimed is taken even before its
    bytes exist. The record is the intent: a redo after a crash finds it.
    """
    with _claims:
        for candidate in outputs.candidate_names(wanted):
            if _free_for(ctx, photo, candidate):
                ctx.ledger.record_output(photo.id, str(candidate), 0, "")
                return candidate
    raise AssertionError("unreachable")


def _free_for(ctx: Context, photo: Photo, path: Path) -> bool:
    """Return True if `path` is unused, or is what the daemon itself wrote for this same file.

    "What the daemon wrote" is checked against the recorded checksum: a file
    someone replaced by hand since is theirs now, and is never overwritten.
    A link at the name is never ours, nor someone else's file to step
    around: the photo fails naming it (outputs.LinkInTheWay).
    """
    if os.path.islink(path):
        raise outputs.LinkInTheWay(path)
    owner = ctx.ledger.output_owner(str(path))
    if owner is not None:
        owner_photo = ctx.ledger.get_photo(owner.photo_id)
        if owner_photo is None or (owner_photo.watch, owner_photo.rel_path) != (photo.watch, photo.rel_path):
            return False
        return not path.exists() or not owner.sha256 or outputs.sha256_file(path) == owner.sha256
    return not os.path.lexists(path)


def output_error(exc: OSError) -> OSError:
    """Given a failed output write, return the error that says whose it is: the disk's (wait) or the name's."""
    if exc.errno in DISK_TROUBLE:
        return OutputUnwritable(exc.errno, exc.strerror, exc.filename)
    return exc


def finish_original(ctx: Context, watch: WatchConfig, photo: Photo) -> str:
    """Keep, archive or delete the original, only now that its outputs are on disk; return 'done'.

    Raises WatchUnavailable while the watch's folder is gone: a photo is
    `done` only once its after_success action has really happened.
    """
    gone = watch_unavailable(watch.input)
    if gone is not None:
        raise gone
    original = watch.input / photo.rel_path
    action = watch.after_success
    if action != "keep" and not os.path.lexists(original):
        log.warning("%s: %s is no longer there; nothing to %s", watch.name, photo.rel_path, action)
        action = "keep"
    if action == "archive" and not _still_this_version(original, photo):
        log.info("%s: %s changed since it was sent; leaving it in place", watch.name, photo.rel_path)
        action = "keep"
    if action == "archive" and watch.archive_dir is not None:
        moved = outputs.move_atomically(original, watch.archive_dir, photo.rel_path)
        log.info("%s: archived %s to %s", watch.name, photo.rel_path, moved)
    elif action == "delete":
        if _delete_if_unchanged(original, photo):
            log.info("%s: deleted the original %s (its outputs are safely written)", watch.name, photo.rel_path)
        else:
            log.info("%s: %s changed while being finished; leaving it in place", watch.name, photo.rel_path)
    ctx.ledger.update_photo(photo.id, state=PhotoState.DONE, trouble_since=None)
    failures.step_succeeded(ctx, photo)
    return PhotoState.DONE


def _delete_if_unchanged(original: Path, photo: Photo) -> bool:
    """Delete the original only if it still holds what was sent; return True if it is gone.

    The file is first renamed aside, so an editor saving over it between the
    check and the delete writes a new file instead of losing its save. The
    aside name is fixed per photo, so a crash mid-way is finished next time.
    """
    aside = original.with_name(f".{original.name}.{photo.id}.skylab-delete")
    if not aside.exists():
        try:
            os.replace(original, aside)
        except FileNotFoundError:
            return True
    if not _still_this_version(aside, photo):
        if not original.exists():
            os.replace(aside, original)
        return False
    aside.unlink()
    outputs.fsync_directory(original.parent)
    return True


def _still_this_version(path: Path, photo: Photo) -> bool:
    """Return True when the file on disk still holds exactly the content that was sent."""
    try:
        digest = hashlib.md5()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == photo.md5
