"""Decode checks and output rendering with pyvips.

Studio delivers one retouched image per photo; what the user gets back
depends on the profile (see "Processing and outputs" in the Studio contract):
a plain retouched file, a PNG cut-out, a flattened copy, or one composite per
background photo. `plan_outputs` turns a profile into a list of `OutputPlan`s,
`render` makes the image for one plan, `output_name` names its file and
`save` writes it; `write_output` does both from Studio's file in one pass.
`check_decodes` is how the daemon proves a downloaded or written file decodes
before it is renamed into place.

Memory stays flat at camera sizes (24 MP and more): Studio's file is read
sequentially, once per output, and streamed through the encoder into the
file, so only a few scanlines are ever held, never the whole image; the
check reads the stream without keeping it. libvips' operation cache is
switched off on import (see `bound_operation_cache`).

This module knows nothing about folders, temp files or the ledger; writing
files atomically is `skylab_watch.outputs`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

import pyvips

from skylab_watch.errors import SkylabWatchError

WHITE = (255, 255, 255)

# Output kinds, as recorded in OutputPlan.kind.
RETOUCHED = "retouched"
CUTOUT = "cutout"
FLATTENED = "flattened"
COMPOSITE = "composite"

_SUFFIX_FOR_FORMAT = {"jpg": ".jpg", "jpeg": ".jpg", "png": ".png", "webp": ".webp"}
DEFAULT_OUTPUT_TYPE = "jpg"


class ImageError(SkylabWatchError):
    """An image cannot be decoded or written.

    Retrying the same bytes will not help; downloading the file again might
    (a truncated download is the usual cause).
    """


# --- libvips settings ---------------------------------------------------------

def bound_operation_cache(max_operations: int = 0) -> None:
    """Keep at most `max_operations` finished libvips operations (none by default).

    libvips caches its last 100 operations, and a cached load holds on to
    its decoded pixels (96 MB for a 24 MP cut-out) and to its open file, so
    a deleted download's disk space is not given back; it would also hand a
    second open of the same path the sequential image already read to its
    end. The daemon never repeats an operation on the same pixels, so the
    cache only costs memory.
    """
    pyvips.cache_set_max(max_operations)


bound_operation_cache()


# --- decoding ----------------------------------------------------------------

def open_streamed(path: Path) -> pyvips.Image:
    """Given an image file, return it opened for one top-to-bottom read; raise ImageError if its header is unreadable.

    Sequential access keeps a few scanlines in memory whatever the image's
    size. The price: its pixels can be read once and in order (reading a
    corner first gives "out of order read"), so open it again for each
    output. With `fail_on="error"` a short or corrupt stream fails that read
    instead of passing as a warning with grey rows.
    """
    try:
        return pyvips.Image.new_from_file(str(path), access="sequential", fail_on="error", revalidate=True)
    except pyvips.Error as exc:
        raise ImageError(f"{path}: cannot be decoded as an image ({_first_line(exc)})") from exc


# Loader options for a cheaper decode that still reads the whole stream.
# libvips' WebP loader holds the whole frame twice (100 MB for 12 MP) unless scaled.
_REDUCED_DECODE: dict[str, dict[str, float]] = {"jpegload": {"shrink": 8}, "webpload": {"scale": 0.125}}


def check_decodes(path: Path | int) -> None:
    """Given an image file (a path, or a descriptor open for reading), return if its whole stream decodes;
    raise ImageError if it does not.

    libvips is lazy: opening a truncated file succeeds and the damage only
    shows when the pixels are read. This reads every byte of the stream once,
    in order, keeping nothing: JPEG and WebP at 1/8 scale (the reduced
    decode still reads and decodes every block of the stream, so truncation
    and corruption are caught, at a fraction of the time or memory), PNG at
    full size through a sequential pass whose memory does not grow with the
    image. This is what lets the daemon trust a download, or its own output,
    before renaming it into place. A descriptor is how an output is checked
    under its temp name without opening that name again (see
    `outputs.write_atomically`); libvips reads a duplicate of it from the start.
    """
    try:
        loader = _open(path).get("vips-loader")
        options = next((opts for prefix, opts in _REDUCED_DECODE.items() if loader.startswith(prefix)), {})
        _open(path, access="sequential", fail_on="error", **options).avg()
    except pyvips.Error as exc:
        raise ImageError(f"{_shown(path)}: cannot be decoded as an image ({_first_line(exc)})") from exc


def _open(path: Path | int, **options: object) -> pyvips.Image:
    """Open an image by path, or through a libvips source on a duplicate of a descriptor (read from its start)."""
    if isinstance(path, int):
        return pyvips.Image.new_from_source(pyvips.Source.new_from_descriptor(path), "", **options)
    return pyvips.Image.new_from_file(str(path), revalidate=True, **options)


def _shown(path: Path | int) -> str:
    """Return how an error names the file: its path, or which descriptor it was read from."""
    return f"file descriptor {path}" if isinstance(path, int) else str(path)


def load_checked(path: Path) -> pyvips.Image:
    """Given an image file, check that it decodes and return it opened for random access; raise ImageError if not.

    For callers that must read pixels in any order (a test looking at a
    corner); libvips decodes the pixels on first use. The daemon itself
    renders through `write_output`, which never holds a whole image.
    """
    check_decodes(path)
    return pyvips.Image.new_from_file(str(path), revalidate=True)


def load_background(data: bytes) -> pyvips.Image:
    """Given a background photo's bytes, return it decoded once into memory; raise ImageError if it cannot be.

    A background serves every photo of a job, in any order, so it is held
    decoded (75 MB for 5000x5000). Decoding sequentially into the copy avoids
    a second, random-access decode buffer beside it (twice the memory).
    """
    try:
        return pyvips.Image.new_from_buffer(data, "", access="sequential", fail_on="error").copy_memory()
    except pyvips.Error as exc:
        raise ImageError(f"background photo cannot be decoded ({_first_line(exc)})") from exc


def _first_line(exc: pyvips.Error) -> str:
    """Return the most telling line of a libvips error, which can span several lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(lines[:3]) or "unknown libvips error"


# --- pixel operations --------------------------------------------------------

def has_alpha(image: pyvips.Image) -> bool:
    """Return True if the image carries an alpha channel (grey+alpha or RGB+alpha)."""
    return bool(image.hasalpha())


def to_srgb(image: pyvips.Image) -> pyvips.Image:
    """Return the image as 8-bit sRGB, keeping any alpha channel.

    Backgrounds and retouched photos may come as greyscale, CMYK or 16-bit;
    compositing and flattening need both sides in the same 8-bit space, where
    255 means opaque.
    """
    if image.interpretation != "srgb":
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def flatten(image: pyvips.Image, background: tuple[int, int, int] = WHITE) -> pyvips.Image:
    """Return the image with its alpha dropped over `background`; a no-op without alpha.

    JPEG has no alpha channel, so a cut-out bound for a JPEG must be laid on
    a colour first, or the transparent parts would come out black.
    """
    if not has_alpha(image):
        return image
    return to_srgb(image).flatten(background=list(background))


def ensure_rgba(image: pyvips.Image) -> pyvips.Image:
    """Return the image as 8-bit sRGB with an alpha channel (opaque if it had none)."""
    image = to_srgb(image)
    return image if has_alpha(image) else image.bandjoin(255)


def fit_background(background: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Return the background scaled to cover width x height and centre-cropped to exactly that size.

    Covering (not letterboxing) means no bars: the photo's frame is filled
    and the overflow of the longer side is cut equally from both ends. The
    result is 3-band 8-bit sRGB so the cut-out can be composited over it.
    """
    background = flatten(to_srgb(background))
    scale = max(width / background.width, height / background.height)
    resized = background.resize(scale)
    # Rounding can leave the resized image one pixel short; "copy" repeats the edge.
    return resized.gravity("centre", width, height, extend="copy")


def composite_over(cutout: pyvips.Image, background: pyvips.Image) -> pyvips.Image:
    """Given an RGBA cut-out and a background of the same size, return the 3-band composite."""
    if (cutout.width, cutout.height) != (background.width, background.height):
        raise ValueError(
            f"cut-out is {cutout.width}x{cutout.height} but background is "
            f"{background.width}x{background.height}; fit the background first"
        )
    base = flatten(to_srgb(background))
    combined = base.composite2(ensure_rgba(cutout), "over", compositing_space="srgb")
    return combined.extract_band(0, n=3).cast("uchar")


# --- saving ------------------------------------------------------------------

def save(
    image: pyvips.Image, path: Path | BinaryIO, fmt: str, strip_metadata: bool = False, quality: int = 92
) -> None:
    """Stream the image to exactly `path` (or into an open binary file) in `fmt` (jpg, jpeg, png or webp);
    raise ImageError if it cannot be made.

    The format comes from `fmt`, never from the path's suffix, because the
    daemon writes to a hidden temp name first, through a file it opened
    itself without following links (`outputs.write_atomically`). JPEG cannot
    hold alpha, so it is flattened over white. With `strip_metadata` no EXIF,
    XMP, ICC or PNG text chunk is written. JPEG and PNG encoders write as they
    go, holding a few scanlines; libwebp cannot, and holds the whole picture
    (about 150 MB more at 24 MP). A failure to read the pixels (a truncated
    source) is an ImageError; a failure to write (disk full, read-only) is
    the OSError itself, so callers can tell a bad image from a bad disk.
    """
    suffix = _suffix(fmt)
    if suffix == ".jpg":
        image = flatten(image)
    options = _save_options(suffix, strip_metadata, quality)
    if not isinstance(path, (str, PurePath)):
        _save_into(image, path, suffix, options, fmt)
        return
    with open(path, "wb") as sink:
        _save_into(image, sink, suffix, options, fmt)


def _save_into(image: pyvips.Image, sink: BinaryIO, suffix: str, options: dict, fmt: str) -> None:
    """Encode the image into an open file; a write error is re-raised as the OSError it was."""
    target, write_errors = _file_target(sink)
    try:
        image.write_to_target(target, suffix, **options)
    except pyvips.Error as exc:
        if write_errors:
            raise write_errors[0] from None
        name = getattr(sink, "name", "the output")
        raise ImageError(f"{name}: cannot be written as {fmt} ({_first_line(exc)})") from exc


def _file_target(sink) -> tuple[pyvips.TargetCustom, list[OSError]]:
    """Return a libvips target writing into an open file, and the list that will hold its write error.

    libvips reports a failed write only as a generic error; keeping Python's
    own OSError (with its errno) lets the caller treat a full disk as a disk
    problem rather than a broken image.
    """
    errors: list[OSError] = []
    target = pyvips.TargetCustom()

    def on_write(chunk) -> int:
        try:
            return sink.write(chunk)
        except OSError as exc:
            errors.append(exc)
            return -1

    target.on_write(on_write)
    return target, errors


def _suffix(fmt: str) -> str:
    """Return the libvips saver suffix for an output format; raise ValueError for an unknown one."""
    try:
        return _SUFFIX_FOR_FORMAT[fmt.lower()]
    except KeyError:
        raise ValueError(f"unknown output format {fmt!r}; expected jpg, jpeg, png or webp") from None


def _save_options(suffix: str, strip_metadata: bool, quality: int) -> dict:
    """Return the saver keyword arguments for one format."""
    options: dict = {}
    if suffix in (".jpg", ".webp"):
        options["Q"] = quality
    if strip_metadata:
        options.update(_no_metadata_option())
    return options


def _no_metadata_option() -> dict:
    """Return the saver option that writes no metadata.

    libvips 8.15 replaced the boolean `strip` with `keep` (a set of flags);
    `strip` still works in 8.18 but is deprecated, so use `keep` when the
    library is new enough.
    """
    if pyvips.at_least_libvips(8, 15):
        return {"keep": pyvips.enums.ForeignKeep.NONE}
    return {"strip": True}


# --- planning ----------------------------------------------------------------

@dataclass(frozen=True)
class OutputPlan:
    """One file to write for a photo.

    `suffix_label` goes in parentheses after the stem (None for the plain
    name); `kind` is retouched, cutout, flattened or composite;
    `background_index` points into the profile's background list for a
    composite.
    """

    suffix_label: str | None
    fmt: str
    kind: str
    background_index: int | None = None


def plan_outputs(profile: dict, original_suffix: str, background_stems: list[str]) -> list[OutputPlan]:
    """Given a Studio profile (camelCase JSON), the original's suffix and the background stems,
    return the files to write.

    Follows "Processing and outputs" in the Studio contract. A WebP output
    for a PNG original goes back as PNG, for every output that is not already
    the PNG cut-out.
    """
    fmt = _output_type(profile, original_suffix)
    if not profile.get("enableExtract"):
        return [OutputPlan(None, fmt, RETOUCHED)]
    dual = bool(profile.get("dualFileOutput"))
    if profile.get("replaceBackground") and background_stems:
        return _composite_plans(fmt, background_stems, dual)
    plans = [OutputPlan(None, "png", CUTOUT)]
    if dual and fmt != "png":
        plans.append(OutputPlan(None, fmt, FLATTENED))
    return plans


def _output_type(profile: dict, original_suffix: str) -> str:
    """Return the profile's output type, lower-cased, with WebP turned back into PNG for a PNG original."""
    fmt = str(profile.get("outputFileType") or DEFAULT_OUTPUT_TYPE).lower()
    _suffix(fmt)  # reject an unknown type here, before anything is downloaded
    if fmt == "webp" and original_suffix.lower() == ".png":
        return "png"
    return fmt


def _composite_plans(fmt: str, background_stems: list[str], dual: bool) -> list[OutputPlan]:
    """Return one composite per background, plus the PNG cut-out for dual output."""
    plans = [OutputPlan(None, "png", CUTOUT)] if dual else []
    if len(background_stems) == 1 and not dual:
        return [OutputPlan(None, fmt, COMPOSITE, 0)]
    for index, label in enumerate(_unique_labels(background_stems)):
        plans.append(OutputPlan(label, fmt, COMPOSITE, index))
    return plans


def _unique_labels(stems: list[str]) -> list[str]:
    """Return the stems with repeats numbered (`beach`, `beach 2`), so two backgrounds never share a file name."""
    seen: dict[str, int] = {}
    labels = []
    for stem in stems:
        seen[stem] = seen.get(stem, 0) + 1
        labels.append(stem if seen[stem] == 1 else f"{stem} {seen[stem]}")
    return labels


def render(plan: OutputPlan, retouched: pyvips.Image, backgrounds: list[pyvips.Image]) -> pyvips.Image:
    """Given a plan, Studio's retouched image and the profile's backgrounds, return the image to save."""
    if plan.kind == RETOUCHED:
        return retouched
    if plan.kind == CUTOUT:
        return ensure_rgba(retouched)
    if plan.kind == FLATTENED:
        return flatten(retouched, WHITE)
    if plan.kind == COMPOSITE:
        if plan.background_index is None:
            raise ValueError("a composite plan needs a background_index")
        fitted = fit_background(backgrounds[plan.background_index], retouched.width, retouched.height)
        return composite_over(retouched, fitted)
    raise ValueError(f"unknown output kind {plan.kind!r}")


def write_output(plan: OutputPlan, retouched: Path, backgrounds: list[pyvips.Image], path: Path | BinaryIO,
                 strip_metadata: bool = False) -> None:
    """Given a plan and Studio's retouched file, render the output and stream it to exactly `path`
    (or into an open binary file).

    Studio's file is opened afresh for one sequential read, so a 24 MP
    output holds a few scanlines, not the image. Raise ImageError if the
    file does not decode or the output cannot be encoded, OSError if the
    disk refuses the write.
    """
    save(render(plan, open_streamed(retouched), backgrounds), path, plan.fmt, strip_metadata=strip_metadata)


def output_name(stem: str, plan: OutputPlan) -> str:
    """Return the file name for a plan: `<stem>.<ext>` or `<stem> (<label>).<ext>`."""
    ext = _suffix(plan.fmt)[1:]
    if plan.suffix_label is None:
        return f"{stem}.{ext}"
    return f"{stem} ({plan.suffix_label}).{ext}"


def strips_metadata(profile: dict, plan: OutputPlan) -> bool:
    """Return True if the file for this plan must carry no metadata (`enableStripPngMetadata`, PNG outputs only)."""
    return bool(profile.get("enableStripPngMetadata")) and plan.fmt == "png"
