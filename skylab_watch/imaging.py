"""Decode checks and output rendering with pyvips.

Studio delivers one retouched image per photo; what the user gets back
depends on the profile (see "Processing and outputs" in the Studio contract):
a plain retouched file, a PNG cut-out, a flattened copy, or one composite per
background photo. `plan_outputs` turns a profile into a list of `OutputPlan`s,
`render` makes the image for one plan, `output_name` names its file and
`save` writes it. `load_checked` is how the daemon proves a downloaded or
written file decodes before it is renamed into place.

This module knows nothing about folders, temp files or the ledger; writing
files atomically is `skylab_watch.outputs`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


# --- decoding ----------------------------------------------------------------

def load_checked(path: Path) -> pyvips.Image:
    """Given an image file, return it fully decoded in memory; raise ImageError if it is not.

    libvips is lazy: opening a truncated file succeeds and the damage only
    shows when the pixels are read. Decoding every pixel here, with
    `fail_on="error"` so that libvips treats a short or corrupt stream as an
    error rather than a warning, is what lets the daemon trust a download
    before renaming it into place.
    """
    try:
        image = pyvips.Image.new_from_file(str(path), fail_on="error")
        return image.copy_memory()
    except pyvips.Error as exc:
        raise ImageError(f"{path}: cannot be decoded as an image ({_first_line(exc)})") from exc


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
    image: pyvips.Image, path: Path, fmt: str, strip_metadata: bool = False, quality: int = 92
) -> None:
    """Write the image to exactly `path` in `fmt` (jpg, jpeg, png or webp); raise ImageError if it cannot be encoded.

    The format comes from `fmt`, never from the path's suffix, because the
    daemon writes to a hidden temp name first. JPEG cannot hold alpha, so it
    is flattened over white. With `strip_metadata` no EXIF, XMP, ICC or PNG
    text chunk is written. Disk errors surface as OSError.
    """
    suffix = _suffix(fmt)
    if suffix == ".jpg":
        image = flatten(image)
    options = _save_options(suffix, strip_metadata, quality)
    try:
        data = image.write_to_buffer(suffix, **options)
    except pyvips.Error as exc:
        raise ImageError(f"{path}: cannot be encoded as {fmt} ({_first_line(exc)})") from exc
    Path(path).write_bytes(data)


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
    """Given a Studio profile (camelCase JSON), the original's suffix and the background stems, return the files to write.

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


def output_name(stem: str, plan: OutputPlan) -> str:
    """Return the file name for a plan: `<stem>.<ext>` or `<stem> (<label>).<ext>`."""
    ext = _suffix(plan.fmt)[1:]
    if plan.suffix_label is None:
        return f"{stem}.{ext}"
    return f"{stem} ({plan.suffix_label}).{ext}"


def strips_metadata(profile: dict, plan: OutputPlan) -> bool:
    """Return True if the file for this plan must carry no metadata (`enableStripPngMetadata`, PNG outputs only)."""
    return bool(profile.get("enableStripPngMetadata")) and plan.fmt == "png"
