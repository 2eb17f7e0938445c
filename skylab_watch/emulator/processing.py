"""Make the "retouched" images with pyvips, deterministically.

The emulator does not retouch anything for real; it only needs outputs that
are real images of the right kind, so that a client's download and writing
code is exercised: an RGBA cut-out with a non-trivial alpha for extract
profiles, a visibly changed image in the profile's output type otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyvips

from skylab_watch.studio.limits import MAX_PIXELS, MAX_SIDE
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class ImageError(ValueError):
    """The bytes are not an image the emulator can decode."""


@dataclass(frozen=True)
class OutputSpec:
    """What a profile asks of an output; hashable so outputs can be cached.

    `file_type` is the type delivered (the core decides it from the profile
    and the active variants): "png" or "webp" for a cut-out, the profile's
    output type otherwise.
    """

    extract: bool
    file_type: str
    crop: bool
    strip_metadata: bool


def image_size(data: bytes) -> tuple[int, int]:
    """Given uploaded bytes, return (width, height); raise ImageError if undecodable.

    Only the header is read, in place (a memory source: new_from_buffer would copy every byte of the
    upload first, which made this a tenth of the emulator's time under a stream of uploads).
    """
    try:
        image = pyvips.Image.new_from_source(pyvips.Source.new_from_memory(data), "")
        return image.width, image.height
    except pyvips.Error as exc:
        raise ImageError(str(exc).splitlines()[0] if str(exc) else "cannot decode") from exc


def limit_problem(width: int, height: int) -> str | None:
    """Return which upload limit a size breaks, or None if it is accepted."""
    if width > MAX_SIDE or height > MAX_SIDE:
        return f"is {width}x{height} px, over the limit of {MAX_SIDE} px on a side"
    if width * height > MAX_PIXELS:
        return f"is {width * height / 1e6:.1f} megapixels, over the limit of 27 megapixels"
    return None


def _load_rgb(data: bytes) -> pyvips.Image:
    """Decode to 8-bit sRGB with exactly three bands (alpha flattened on white), in memory.

    The cut-out reads the four corner pixels before the rows in between, so
    the decoded image must allow random access: a sequential decode fails
    with "out of order read" as soon as a JPEG or PNG is taller than the
    decoder's look-behind (about 750 px). Decoding once into memory (72 MB
    for a 24 MP photo) also serves the several passes over the pixels.
    """
    image = pyvips.Image.new_from_buffer(data, "").autorot()
    image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255, 255, 255])
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image[0:3].cast("uchar").copy_memory()


LUMA = (0.299, 0.587, 0.114)
# More saturation: each channel moves 30 % further away from the pixel's grey.
SATURATE = [[(1.3 if row == col else 0.0) - 0.3 * LUMA[col] for col in range(3)] for row in range(3)]


def _retouch(image: pyvips.Image, crop: bool) -> pyvips.Image:
    """Return a visibly different image: more contrast and saturation.

    Done in sRGB with one 3x3 matrix and one linear step (a cast clamps to
    0..255), which costs a tenth of a round trip through LCh at 24 MP.
    """
    if crop and image.width > 20 and image.height > 20:
        dx, dy = image.width // 20, image.height // 20
        image = image.crop(dx, dy, image.width - 2 * dx, image.height - 2 * dy)
    return image.recomb(SATURATE).linear([1.15] * 3, [-12.0] * 3).cast("uchar").copy(interpretation="srgb")


def _background_colour(image: pyvips.Image) -> list[float]:
    """Return the mean colour of the four corner pixels, taken as the background."""
    w, h = image.width - 1, image.height - 1
    corners = [image.getpoint(x, y) for x, y in ((0, 0), (w, 0), (0, h), (w, h))]
    return [sum(c[band] for c in corners) / 4 for band in range(3)]


def _cut_out(image: pyvips.Image) -> pyvips.Image:
    """Return RGBA: alpha from the distance to the background colour, feathered."""
    background = _background_colour(image)
    diff = (image.cast("float") - background) ** 2
    distance = (diff[0] + diff[1] + diff[2]) ** 0.5
    # 0 below a distance of 24, 255 above 56, a ramp in between: some pixels are
    # fully transparent, some fully opaque, edges are soft.
    alpha = ((distance - 24) * (255 / 32)).cast("float")
    alpha = (alpha < 0).ifthenelse(0, alpha)
    alpha = (alpha > 255).ifthenelse(255, alpha)
    alpha = alpha.gaussblur(0.6, min_ampl=0.2).cast("uchar")
    return image.bandjoin(alpha).copy(interpretation="srgb")


def _encode(image: pyvips.Image, file_type: str, strip: bool) -> bytes:
    """Encode in `file_type`; metadata is stripped when asked (and always for JPEG/WebP).

    WebP uses the fastest effort: at the default a 24 MP cut-out takes 6 s.
    """
    if file_type == "png":
        keep = pyvips.enums.ForeignKeep.NONE if strip else pyvips.enums.ForeignKeep.ALL
        return image.pngsave_buffer(keep=keep)
    if file_type == "webp":
        return image.webpsave_buffer(Q=85, effort=0, keep=pyvips.enums.ForeignKeep.NONE)
    return image.jpegsave_buffer(Q=88, keep=pyvips.enums.ForeignKeep.NONE)


def render_output(original: bytes, spec: OutputSpec) -> tuple[bytes, str]:
    """Given uploaded bytes and a profile's spec, return (output bytes, content type).

    Raise ImageError if the original cannot be decoded.
    """
    file_type = spec.file_type if spec.file_type in CONTENT_TYPES else "jpg"
    try:
        image = _load_rgb(original)
        out = _cut_out(image) if spec.extract else _retouch(image, spec.crop)
        return _encode(out, file_type, spec.strip_metadata), CONTENT_TYPES[file_type]
    except pyvips.Error as exc:
        raise ImageError(str(exc)) from exc
