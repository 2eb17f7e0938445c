"""Validation of a settled file against what Skylab Studio accepts.

A photo that Studio would refuse should be rejected here, with a reason a
studio manager understands, rather than fail minutes later inside a job. The
checks run cheapest first, so no file can cost more than its limits allow:
vanished or not a plain file, empty, file type, then the byte size (from
`fstat`) and the dimensions (from the header alone) against the limits, and
only then the proof that the file is whole. Limit problems alone are marked
`oversized`, because a resized copy can fix them; an image declaring more
than MAX_CHECK_PIXELS (a decompression bomb) is refused from its header.

A header is not enough, because a JPEG cut short by an interrupted copy has
a perfectly good one. A JPEG is proved by its structure, up to its
end-of-image marker (`jpeg_structure` says why that is both cheaper and
stricter than a decode); PNG, WebP and a JPEG
too large to hold are decoded in full. Decodes run under a time bound: past
it, libvips is told to stop and the file is refused.

The file is opened once, without following a symlink and without blocking
(`plain_files`), and everything (hash, header, pixels) is read from that
descriptor; its device and inode are returned so the upload can check it
reads the very file that was validated.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pyvips

from skylab_watch.watch.jpeg_structure import jpeg_problem
from skylab_watch.watch.plain_files import NotPlainFile, open_plain_file
from skylab_watch.studio.limits import MAX_BYTES, MAX_PIXELS, MAX_SIDE

log = logging.getLogger(__name__)

VANISHED = "the file disappeared before it could be checked"
NO_PERMISSION = "the file cannot be read: permission denied (it is looked at again on each rescan)"
"""The reason for a file we may not read; a rescan looks at such files again, so a fixed permission is seen."""
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

MAX_CHECK_PIXELS = 200_000_000
"""Images declaring more pixels are refused from their header and never decoded (decompression bombs).
Well above Studio's 27 MP so that a 150 MP medium-format photo can still be checked and resized;
decoding 200 MP takes about 2 s of one core."""
MAX_CHECK_BYTES = 512 * 1024 * 1024
"""Files larger than this are refused from their size alone, never read."""

_BUFFER_LIMIT = 96 * 1024 * 1024
"""Files up to this size are decoded from the very bytes that were hashed."""

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Inspection:
    """The verdict on one file, plus what was learned on the way (md5, dimensions, which file it was)."""

    ok: bool
    reason: str | None
    size: int
    mtime_ns: int
    md5: str
    width: int | None
    height: int | None
    oversized: bool
    device: int | None = None
    inode: int | None = None


@dataclass(frozen=True)
class _Opened:
    """An open plain file: its descriptor and what fstat said of it."""

    fd: int
    info: os.stat_result
    deadline: float | None

    @property
    def facts(self) -> dict:
        """The identity every Inspection of this file carries (size, mtime, device, inode)."""
        return {"size": self.info.st_size, "mtime_ns": self.info.st_mtime_ns,
                "device": self.info.st_dev, "inode": self.info.st_ino}


class _TooSlow(Exception):
    """The check ran past its time bound."""


def _rejected(reason: str, size: int = 0, mtime_ns: int = 0, md5: str = "",
              width: int | None = None, height: int | None = None,
              device: int | None = None, inode: int | None = None) -> Inspection:
    """Build a refusal that resizing cannot fix."""
    return Inspection(False, reason, size, mtime_ns, md5, width, height, oversized=False,
                      device=device, inode=inode)


def _check_time(deadline: float | None) -> None:
    """Raise _TooSlow once the deadline has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise _TooSlow()


def _read(opened: _Opened) -> tuple[bytearray | None, str]:
    """Read the open file once (at most the size fstat gave), hashing as we go; return (bytes kept, md5).

    The bytes are kept when the file is small enough, so the decode sees
    exactly what was hashed. They are read straight into one buffer of the
    file's size (no chunk copies: on a camera file those cost more than the
    hash). Raise OSError if reading fails, _TooSlow past the deadline.
    """
    digest = hashlib.md5()
    size = opened.info.st_size
    keep = size <= _BUFFER_LIMIT
    buffer = bytearray(size if keep else min(_CHUNK, size))
    view, done = memoryview(buffer), 0
    while done < size:
        want = min(_CHUNK, size - done)
        target = view[done:done + want] if keep else view[:want]
        got = os.preadv(opened.fd, [target], done)
        if not got:
            break
        digest.update(target[:got])
        done += got
        _check_time(opened.deadline)
    view.release()
    if keep and done < size:
        del buffer[done:]  # the file got shorter while read: keep (and decode) only what was hashed
    return (buffer if keep else None), digest.hexdigest()


def _vips_message(error: pyvips.Error) -> str:
    """Turn libvips' multi-line error into one short line for a reason."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = [line for line in lines if not line.startswith("unable to")] or lines
    return "; ".join(detail)[:200] or "unknown libvips error"


JPEG_PROOF_SHRINK = 8
"""A JPEG too large to hold in memory is proved by a decode at 1/8 scale (libjpeg's DCT scaling,
shrink-on-load): every entropy-coded byte is still read and decoded, so a stream that runs out fails
exactly as at full size, for about 40% of the cost (3000x2000: 42 ms against 110 ms)."""


def _load(opened: _Opened, data: bytearray | None, **options: object) -> pyvips.Image:
    """Open the image lazily (header only), failing on truncation once pixels are read."""
    if data is not None:
        source = pyvips.Source.new_from_memory(data)  # reads the buffer in place (a bytearray: no copy)
        return pyvips.Image.new_from_source(source, "", access="sequential", fail_on="truncated", **options)
    return pyvips.Image.new_from_source(_source(opened.fd), "", access="sequential", fail_on="truncated", **options)


def _is_jpeg(header: pyvips.Image) -> bool:
    """True if libvips read the header with its JPEG loader."""
    loader = header.get("vips-loader") if header.get_typeof("vips-loader") else ""
    return str(loader).startswith("jpegload")


def _proof_problem(opened: _Opened, data: bytearray | None, header: pyvips.Image) -> str | None:
    """Prove the file whole; return what is wrong with it, or None.

    A JPEG held in memory is proved by its structure (`jpeg_structure`: every
    segment in place up to the end-of-image marker, which also catches a
    zero-filled tail that a decode accepts; its headers, tables included,
    were read by libvips for the dimensions already); any other image, or a
    JPEG too large to hold, is decoded whole (PNG and WebP checksums and
    lengths fail on truncation).
    Raise _TooSlow past the deadline.
    """
    jpeg = _is_jpeg(header)
    if jpeg and data is not None:
        return jpeg_problem(data)
    try:
        _decode_all(_load(opened, data, **({"shrink": JPEG_PROOF_SHRINK} if jpeg else {})), opened.deadline)
    except pyvips.Error as exc:
        return _vips_message(exc)
    return None


def _source(fd: int) -> pyvips.Source:
    """A libvips source reading the open file from its start (libvips reads a duplicate of the descriptor)."""
    os.lseek(fd, 0, os.SEEK_SET)
    return pyvips.Source.new_from_descriptor(fd)


def _decode_all(image: pyvips.Image, deadline: float | None) -> None:
    """Decode every pixel (truncation shows only then); tell libvips to stop at the deadline.

    Raise pyvips.Error for a corrupt image, _TooSlow when stopped at the deadline.
    """
    if deadline is not None:
        image.set_progress(True)

        def on_eval(img: pyvips.Image, _progress: object) -> None:
            if time.monotonic() > deadline:
                img.set_kill(True)
        image.signal_connect("eval", on_eval)
    try:
        image.avg()
    except pyvips.Error:
        _check_time(deadline)
        raise


def describe_extension(path: Path) -> str | None:
    """Return the reason a file type is refused, or None if Studio accepts it."""
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return None
    shown = f"'{suffix}'" if suffix else "(no extension)"
    return f"unsupported file type {shown}: Studio accepts {', '.join(EXTENSIONS)}"


def limit_problems(size: int, width: int, height: int) -> list[str]:
    """Given bytes and dimensions, return every Studio limit they break, with the numbers."""
    problems = []
    if size > MAX_BYTES:
        problems.append(f"the file is too large: {size / 2**20:.1f} MiB "
                        f"(Studio accepts at most {MAX_BYTES // 2**20} MiB)")
    if max(width, height) > MAX_SIDE:
        problems.append(f"the image is too large: {width} x {height} px "
                        f"(Studio accepts at most {MAX_SIDE} px on a side)")
    if width * height > MAX_PIXELS:
        problems.append(
            f"the image has too many pixels: {width * height / 1e6:.1f} MP ({width} x {height}; "
            f"Studio accepts at most {MAX_PIXELS / 1e6:g} MP)"
        )
    return problems


def too_large_to_check(size: int, width: int, height: int) -> str | None:
    """Given bytes and dimensions, return why the file is too large to be checked or resized at all, or None."""
    if size > MAX_CHECK_BYTES:
        return (f"the file is too large to check: {size / 2**20:.1f} MiB "
                f"(skylab-watch reads at most {MAX_CHECK_BYTES // 2**20} MiB)")
    if width * height > MAX_CHECK_PIXELS:
        return (f"the image declares too many pixels to decode safely: {width * height / 1e6:.1f} MP "
                f"({width} x {height}; skylab-watch decodes at most {MAX_CHECK_PIXELS / 1e6:g} MP, "
                f"Studio accepts {MAX_PIXELS / 1e6:g} MP)")
    return None


def inspect_photo(path: Path, time_bound: float | None = None, decode_oversized: bool = True) -> Inspection:
    """Given a settled file, return whether Studio will accept it and, if not, why.

    Never raises for a bad file: unreadable, vanished, swapped or corrupt
    files come back as `ok=False` with a reason. The md5 covers exactly the
    bytes that were decoded (for files up to ~96 MiB), so the uploader can
    trust it. `time_bound` (seconds) caps the whole check; past it the file
    is refused. `decode_oversized=False` skips the decode of a file that
    breaks Studio's limits (it will be refused anyway; nothing will resize it).
    """
    path = Path(path)
    deadline = None if time_bound is None else time.monotonic() + time_bound
    try:
        fd, info = open_plain_file(path)
    except FileNotFoundError:
        return _rejected(VANISHED)
    except NotPlainFile:
        return _rejected("not a regular file (a folder, link or device)")
    except PermissionError:
        return _rejected(NO_PERMISSION)
    except OSError as exc:
        return _rejected(f"the file cannot be read: {exc.strerror or exc}")
    opened = _Opened(fd, info, deadline)
    try:
        return _judge(path, opened, decode_oversized)
    except _TooSlow:
        return _rejected(too_slow_reason(time_bound or 0.0), **opened.facts)
    except OSError as exc:
        if isinstance(exc, PermissionError):
            return _rejected(NO_PERMISSION, **opened.facts)
        return _rejected(f"the file cannot be read: {exc.strerror or exc}", **opened.facts)
    finally:
        os.close(fd)


def too_slow_reason(seconds: float) -> str:
    """The reason given for a file whose check ran past its time bound."""
    return (f"checking the file took longer than {seconds:g} s (an image too costly to decode, or a very slow "
            "disk); it was skipped so other photos could go on")


def _judge(path: Path, opened: _Opened, decode_oversized: bool) -> Inspection:
    """Apply the checks, cheapest first, to a file that is open: size, type, header, limits, then pixels."""
    facts = opened.facts
    if facts["size"] == 0:
        return _rejected("the file is empty (0 bytes)", **facts)
    problem = describe_extension(path) or too_large_to_check(facts["size"], 0, 0)
    if problem:
        return _rejected(problem, **facts)
    try:
        header = _load(opened, None)
    except pyvips.Error as exc:
        return _rejected(f"not a readable image: {_vips_message(exc)}", **facts)
    width, height = header.width, header.height
    too_large = too_large_to_check(facts["size"], width, height)
    if too_large:
        return _rejected(too_large, width=width, height=height, **facts)
    data, md5 = _read(opened)
    problems = limit_problems(facts["size"], width, height)
    if not problems or decode_oversized:
        broken = _proof_problem(opened, data, header)
        if broken:
            return _rejected(f"the image is truncated or corrupt: {broken}", md5=md5, width=width, height=height,
                             **facts)
    if problems:
        return Inspection(False, "; ".join(problems), md5=md5, width=width, height=height, oversized=True,
                          **facts)
    return Inspection(True, None, md5=md5, width=width, height=height, oversized=False, **facts)


def header_readable(path: Path) -> bool:
    """Return True if libvips can read the image header (type and dimensions) of the plain file at `path`.

    Part of settling: a file whose size has stopped changing but whose header
    is still unreadable is probably being written by a slow or paused copy.
    The file is opened without following links or blocking, so a FIFO or a
    link swapped in meanwhile is "not readable", never a hang.
    """
    try:
        fd, _info = open_plain_file(path)
    except OSError:
        return False
    try:
        pyvips.Image.new_from_source(_source(fd), "", access="sequential")
    except Exception:  # noqa: BLE001 - any failure (libvips, OS) means "not yet"
        return False
    finally:
        os.close(fd)
    return True


def make_resized_copy(path: Path, dest: Path) -> Inspection:
    """Given an oversized photo, write a copy at `dest` that fits every Studio limit.

    The copy is turned upright from its EXIF orientation, scaled so no side
    exceeds MAX_SIDE and the pixel count stays within MAX_PIXELS, and saved
    in the original's format (JPEG/WebP at quality 92, lowered step by step
    if the bytes are still too many; PNG shrunk further instead). The
    original is never modified. Returns the inspection of the copy; on
    failure returns `ok=False` with the reason and leaves no file at `dest`.
    """
    path, dest = Path(path), Path(dest)
    try:
        fd, _info = open_plain_file(path)
        try:
            data = _fitting_bytes(fd)
        finally:
            os.close(fd)
        _write_atomically(dest, data)
    except (pyvips.Error, OSError, ValueError) as exc:
        detail = _vips_message(exc) if isinstance(exc, pyvips.Error) else str(exc)
        log.debug("Resizing %s failed: %s", path, detail)
        return _rejected(f"could not make a resized copy: {detail}")
    return inspect_photo(dest)


_FORMATS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}


def _fitting_bytes(fd: int) -> bytes:
    """Encode ever smaller or lower-quality versions of the open file until one fits every limit."""
    header = pyvips.Image.new_from_source(_source(fd), "")
    too_large = too_large_to_check(0, header.width, header.height)
    if too_large:
        raise ValueError(too_large)
    loader = header.get("vips-loader")
    suffix = next((s for name, s in _FORMATS.items() if loader.startswith(name)), None)
    if suffix is None:
        raise ValueError(f"cannot re-encode a {loader.removesuffix('load')} image")
    upright = _upright_size(header)
    scale, quality = _fitting_scale(*upright), 92
    for _ in range(12):
        image = _scaled(fd, upright, scale)
        if limit_problems(0, image.width, image.height):
            scale *= 0.995  # rounding up the box overshot a limit by a pixel
            continue
        data = _encode(image, suffix, quality)
        if len(data) <= MAX_BYTES:
            return data
        if suffix != ".png" and quality > 62:
            quality -= 10
        else:
            scale *= math.sqrt(MAX_BYTES / len(data)) * 0.95
    raise ValueError("the image is still larger than 27 MiB after shrinking it")


def _fitting_scale(width: int, height: int) -> float:
    """Return the largest scale (at most 1) keeping the side and pixel limits."""
    return min(1.0, MAX_SIDE / max(width, height), math.sqrt(MAX_PIXELS / (width * height)))


def _upright_size(header: pyvips.Image) -> tuple[int, int]:
    """Return (width, height) as the photo will stand once its EXIF orientation is applied."""
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    if orientation in (5, 6, 7, 8):
        return header.height, header.width
    return header.width, header.height


def _scaled(fd: int, upright: tuple[int, int], scale: float) -> pyvips.Image:
    """Thumbnail the open file (autorotated) into a box `scale` times its upright size.

    The box is rounded up so the long side really reaches the limit; the
    caller checks the result and shrinks a little if rounding overshot.
    """
    box_w = min(MAX_SIDE, max(1, math.ceil(upright[0] * scale)))
    box_h = min(MAX_SIDE, max(1, math.ceil(upright[1] * scale)))
    return pyvips.Image.thumbnail_source(_source(fd), box_w, height=box_h, size="down")


def _encode(image: pyvips.Image, suffix: str, quality: int) -> bytes:
    """Encode in the original's format; PNG is lossless, so only its size can shrink it."""
    if suffix == ".png":
        return image.write_to_buffer(".png", compression=6)
    return image.write_to_buffer(suffix, Q=quality)


def _write_atomically(dest: Path, data: bytes) -> None:
    """Write through a temporary name so a half-written copy is never seen at `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temporary = dest.with_name(f".{dest.name}.resizing.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, dest)
    finally:
        temporary.unlink(missing_ok=True)
