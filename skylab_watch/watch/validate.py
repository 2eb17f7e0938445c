"""Validation of a settled file against what Skylab Studio accepts.

A photo that Studio would refuse should be rejected here, with a reason a
studio manager understands, rather than fail minutes later inside a job. The
checks run in a fixed order so the first reason is the most useful one:
vanished, empty, file type, readable image, complete image, then the size
limits. Limit problems alone are marked `oversized`, because a resized copy
can fix them.

The image is decoded in full (not just its header) because a JPEG cut short
by an interrupted copy has a perfectly good header.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pyvips

log = logging.getLogger(__name__)

VANISHED = "the file disappeared before it could be checked"
MAX_BYTES = 27 * 1024 * 1024
MAX_SIDE = 6400
MAX_PIXELS = 27_000_000
EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")

_BUFFER_LIMIT = 96 * 1024 * 1024
"""Files up to this size are decoded from the very bytes that were hashed."""

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Inspection:
    """The verdict on one file, plus what was learned on the way (md5, dimensions)."""

    ok: bool
    reason: str | None
    size: int
    mtime_ns: int
    md5: str
    width: int | None
    height: int | None
    oversized: bool


@dataclass(frozen=True)
class _Contents:
    """The bytes read from a file (when small enough to keep) and their md5."""

    data: bytes | None
    md5: str
    size: int
    mtime_ns: int


def _rejected(reason: str, size: int = 0, mtime_ns: int = 0, md5: str = "",
              width: int | None = None, height: int | None = None) -> Inspection:
    """Build a refusal that resizing cannot fix."""
    return Inspection(False, reason, size, mtime_ns, md5, width, height, oversized=False)


def _read(path: Path) -> _Contents:
    """Read the file once, hashing as we go; size and mtime come from the same open file.

    Raise OSError if the file cannot be opened or read.
    """
    digest = hashlib.md5()
    kept = bytearray()
    with open(path, "rb") as handle:
        info = os.fstat(handle.fileno())
        keep = info.st_size <= _BUFFER_LIMIT
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            if keep:
                kept += chunk
    data = bytes(kept) if keep else None
    size = len(data) if data is not None else info.st_size
    return _Contents(data, digest.hexdigest(), size, info.st_mtime_ns)


def _vips_message(error: pyvips.Error) -> str:
    """Turn libvips' multi-line error into one short line for a reason."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    detail = [line for line in lines if not line.startswith("unable to")] or lines
    return "; ".join(detail)[:200] or "unknown libvips error"


def _load(path: Path, contents: _Contents) -> pyvips.Image:
    """Open the image lazily, failing on truncation once pixels are read."""
    if contents.data is not None:
        return pyvips.Image.new_from_buffer(contents.data, "", access="sequential", fail_on="truncated")
    return pyvips.Image.new_from_file(str(path), access="sequential", fail_on="truncated", revalidate=True)


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


def inspect_photo(path: Path) -> Inspection:
    """Given a settled file, return whether Studio will accept it and, if not, why.

    Never raises for a bad file: unreadable, vanished or corrupt files come
    back as `ok=False` with a reason. The md5 covers exactly the bytes that
    were decoded (for files up to ~96 MiB), so the uploader can trust it.
    """
    path = Path(path)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return _rejected(VANISHED)
    except OSError as exc:
        return _rejected(f"the file cannot be read: {exc.strerror or exc}")
    if not stat.S_ISREG(info.st_mode):
        return _rejected("not a regular file (a folder, link or device)", mtime_ns=info.st_mtime_ns)
    try:
        contents = _read(path)
    except FileNotFoundError:
        return _rejected(VANISHED)
    except OSError as exc:
        return _rejected(f"the file cannot be read: {exc.strerror or exc}", info.st_size, info.st_mtime_ns)
    return _judge(path, contents)


def _judge(path: Path, contents: _Contents) -> Inspection:
    """Apply the content checks, in order, to a file that was read successfully."""
    facts = (contents.size, contents.mtime_ns, contents.md5)
    if contents.size == 0:
        return _rejected("the file is empty (0 bytes)", *facts)
    extension_problem = describe_extension(path)
    if extension_problem:
        return _rejected(extension_problem, *facts)
    try:
        image = _load(path, contents)
    except pyvips.Error as exc:
        return _rejected(f"not a readable image: {_vips_message(exc)}", *facts)
    width, height = image.width, image.height
    try:
        image.avg()
    except pyvips.Error as exc:
        return _rejected(f"the image is truncated or corrupt: {_vips_message(exc)}", *facts, width, height)
    problems = limit_problems(contents.size, width, height)
    if problems:
        return Inspection(False, "; ".join(problems), *facts, width, height, oversized=True)
    return Inspection(True, None, *facts, width, height, oversized=False)


def header_readable(path: Path) -> bool:
    """Return True if libvips can read the image header (type and dimensions).

    Part of settling: a file whose size has stopped changing but whose header
    is still unreadable is probably being written by a slow or paused copy.
    """
    try:
        pyvips.Image.new_from_file(str(path), access="sequential", revalidate=True)
    except Exception:  # noqa: BLE001 - any failure (libvips, OS, an unencodable name) means "not yet"
        return False
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
        data = _fitting_bytes(path)
        _write_atomically(dest, data)
    except (pyvips.Error, OSError, ValueError) as exc:
        detail = _vips_message(exc) if isinstance(exc, pyvips.Error) else str(exc)
        log.debug("Resizing %s failed: %s", path, detail)
        return _rejected(f"could not make a resized copy: {detail}")
    return inspect_photo(dest)


_FORMATS = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}


def _fitting_bytes(path: Path) -> bytes:
    """Encode ever smaller or lower-quality versions until one fits every limit."""
    header = pyvips.Image.new_from_file(str(path), revalidate=True)
    loader = header.get("vips-loader")
    suffix = next((s for name, s in _FORMATS.items() if loader.startswith(name)), None)
    if suffix is None:
        raise ValueError(f"cannot re-encode a {loader.removesuffix('load')} image")
    upright = _upright_size(header)
    scale, quality = _fitting_scale(*upright), 92
    for _ in range(12):
        image = _scaled(path, upright, scale)
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


def _scaled(path: Path, upright: tuple[int, int], scale: float) -> pyvips.Image:
    """Thumbnail the file (autorotated) into a box `scale` times its upright size.

    The box is rounded up so the long side really reaches the limit; the
    caller checks the result and shrinks a little if rounding overshot.
    """
    box_w = min(MAX_SIDE, max(1, math.ceil(upright[0] * scale)))
    box_h = min(MAX_SIDE, max(1, math.ceil(upright[1] * scale)))
    return pyvips.Image.thumbnail(str(path), box_w, height=box_h, size="down")


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
