"""Tests of skylab_watch.imaging: output planning, rendering, saving and decode checks, on real images."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pyvips
import pytest

from skylab_watch.errors import SkylabWatchError
from skylab_watch.imaging import (
    ImageError, OutputPlan, check_decodes, composite_over, fit_background, flatten, has_alpha,
    load_background, load_checked, output_name, plan_outputs, render, save, strips_metadata, write_output,
)

RED = [200, 30, 40]
BLUE = [10, 20, 230]


# --- helpers -----------------------------------------------------------------

def solid(width: int, height: int, colour: list[int]) -> pyvips.Image:
    """Return an 8-bit sRGB image of one colour."""
    return (pyvips.Image.black(width, height) + colour).cast("uchar").copy(interpretation="srgb")


def cutout(width: int = 40, height: int = 30, border: int = 5) -> pyvips.Image:
    """Return an RGBA red subject: opaque in the middle, fully transparent in a border."""
    alpha = pyvips.Image.black(width, height).draw_rect(
        255, border, border, width - 2 * border, height - 2 * border, fill=True
    )
    return solid(width, height, RED).bandjoin(alpha.cast("uchar"))


def names(stem: str, plans: list[OutputPlan]) -> list[str]:
    """Return the file names the plans would produce."""
    return [output_name(stem, plan) for plan in plans]


def save_and_reload(image: pyvips.Image, path: Path, fmt: str, **options) -> pyvips.Image:
    """Save with imaging.save and read the file back fully decoded."""
    save(image, path, fmt, **options)
    return load_checked(path)


# --- plan_outputs --------------------------------------------------------------

def test_plain_retouch_uses_output_type_defaulting_to_jpg():
    assert names("IMG_1", plan_outputs({}, ".jpg", [])) == ["IMG_1.jpg"]
    plans = plan_outputs({"outputFileType": "png"}, ".jpg", [])
    assert plans == [OutputPlan(None, "png", "retouched", None)]


def test_jpeg_output_type_is_written_with_jpg_extension():
    assert names("IMG_1", plan_outputs({"outputFileType": "JPEG"}, ".tif", [])) == ["IMG_1.jpg"]


def test_webp_for_png_original_goes_back_as_png():
    assert names("a", plan_outputs({"outputFileType": "webp"}, ".PNG", [])) == ["a.png"]
    assert names("a", plan_outputs({"outputFileType": "webp"}, ".jpg", [])) == ["a.webp"]


def test_plain_extract_is_one_png_cutout():
    plans = plan_outputs({"enableExtract": True, "outputFileType": "jpg"}, ".jpg", [])
    assert plans == [OutputPlan(None, "png", "cutout", None)]


def test_replace_without_backgrounds_is_a_plain_cutout():
    profile = {"enableExtract": True, "replaceBackground": True}
    assert [p.kind for p in plan_outputs(profile, ".jpg", [])] == ["cutout"]


def test_dual_output_gives_cutout_and_flattened_file():
    profile = {"enableExtract": True, "dualFileOutput": True, "outputFileType": "jpg"}
    plans = plan_outputs(profile, ".jpg", [])
    assert [(p.kind, p.fmt) for p in plans] == [("cutout", "png"), ("flattened", "jpg")]
    assert names("IMG_1", plans) == ["IMG_1.png", "IMG_1.jpg"]


def test_dual_output_as_png_is_only_the_cutout():
    profile = {"enableExtract": True, "dualFileOutput": True, "outputFileType": "png"}
    assert names("IMG_1", plan_outputs(profile, ".jpg", [])) == ["IMG_1.png"]


def test_dual_output_webp_for_png_original_is_only_the_cutout():
    profile = {"enableExtract": True, "dualFileOutput": True, "outputFileType": "webp"}
    assert [p.kind for p in plan_outputs(profile, ".png", [])] == ["cutout"]


def test_single_background_without_dual_uses_plain_name():
    profile = {"enableExtract": True, "replaceBackground": True, "outputFileType": "jpg"}
    plans = plan_outputs(profile, ".jpg", ["beach"])
    assert plans == [OutputPlan(None, "jpg", "composite", 0)]
    assert names("IMG_1", plans) == ["IMG_1.jpg"]


def test_several_backgrounds_are_labelled_by_stem():
    profile = {"enableExtract": True, "replaceBackground": True, "outputFileType": "webp"}
    plans = plan_outputs(profile, ".jpg", ["beach", "studio"])
    assert names("IMG_1", plans) == ["IMG_1 (beach).webp", "IMG_1 (studio).webp"]
    assert [p.background_index for p in plans] == [0, 1]


def test_dual_and_replace_with_two_backgrounds_adds_the_cutout():
    profile = {"enableExtract": True, "replaceBackground": True, "dualFileOutput": True,
               "outputFileType": "jpg"}
    plans = plan_outputs(profile, ".jpg", ["beach", "studio"])
    assert names("IMG_1", plans) == ["IMG_1.png", "IMG_1 (beach).jpg", "IMG_1 (studio).jpg"]
    assert [p.kind for p in plans] == ["cutout", "composite", "composite"]


def test_dual_with_single_background_keeps_the_label():
    profile = {"enableExtract": True, "replaceBackground": True, "dualFileOutput": True}
    assert names("a", plan_outputs(profile, ".jpg", ["beach"])) == ["a.png", "a (beach).jpg"]


def test_webp_to_png_rule_applies_to_composites():
    profile = {"enableExtract": True, "replaceBackground": True, "outputFileType": "webp"}
    assert names("a", plan_outputs(profile, ".png", ["x", "y"])) == ["a (x).png", "a (y).png"]


def test_repeated_background_stems_get_distinct_names():
    profile = {"enableExtract": True, "replaceBackground": True}
    assert names("a", plan_outputs(profile, ".jpg", ["bg", "bg"])) == ["a (bg).jpg", "a (bg 2).jpg"]


def test_unknown_output_type_is_rejected():
    with pytest.raises(ValueError, match="tiff"):
        plan_outputs({"outputFileType": "tiff"}, ".jpg", [])


def test_strip_metadata_applies_to_png_outputs_only():
    profile = {"enableStripPngMetadata": True}
    assert strips_metadata(profile, OutputPlan(None, "png", "cutout"))
    assert not strips_metadata(profile, OutputPlan(None, "jpg", "flattened"))
    assert not strips_metadata({}, OutputPlan(None, "png", "cutout"))


# --- pixel operations ----------------------------------------------------------

def test_flatten_drops_alpha_over_colour_and_is_noop_without_alpha():
    flat = flatten(cutout(), (0, 255, 0))
    assert not has_alpha(flat) and flat.bands == 3
    assert flat(0, 0) == [0, 255, 0]
    assert flat(20, 15) == RED
    opaque = solid(4, 4, RED)
    assert flatten(opaque) is opaque


def test_fit_background_covers_and_crops_to_exact_size():
    # Left half green, right half blue, much wider than the target: the centre crop keeps both.
    background = solid(200, 50, [0, 255, 0]).insert(solid(100, 50, BLUE), 100, 0)
    fitted = fit_background(background, 40, 30)
    assert (fitted.width, fitted.height, fitted.bands) == (40, 30, 3)
    assert fitted.interpretation == "srgb"
    assert fitted(2, 15) == [0, 255, 0]
    assert fitted(37, 15) == BLUE


def test_fit_background_turns_grey_with_alpha_into_srgb():
    grey = (pyvips.Image.black(10, 10) + [128, 255]).cast("uchar").copy(interpretation="b-w")
    fitted = fit_background(grey, 7, 13)
    assert (fitted.width, fitted.height, fitted.bands) == (7, 13, 3)


def test_composite_over_requires_same_size():
    with pytest.raises(ValueError, match="fit the background"):
        composite_over(cutout(40, 30), solid(10, 10, BLUE))


# --- render + save ---------------------------------------------------------------

def test_cutout_png_keeps_transparent_and_opaque_alpha(tmp_path: Path):
    image = render(OutputPlan(None, "png", "cutout"), cutout(), [])
    reloaded = save_and_reload(image, tmp_path / "c.png", "png")
    assert reloaded.bands == 4
    alpha = reloaded.extract_band(3)
    assert alpha.min() == 0 and alpha.max() == 255


def test_cutout_of_opaque_image_gets_an_opaque_alpha_channel():
    image = render(OutputPlan(None, "png", "cutout"), solid(5, 5, RED), [])
    assert image.bands == 4 and image.extract_band(3).min() == 255


def test_flattened_jpeg_has_three_bands_and_white_background(tmp_path: Path):
    image = render(OutputPlan(None, "jpg", "flattened"), cutout(), [])
    reloaded = save_and_reload(image, tmp_path / "f.jpg", "jpg", quality=100)
    assert reloaded.bands == 3
    assert all(v > 245 for v in reloaded(0, 0))


def test_composite_matches_photo_size_and_shows_background_and_subject(tmp_path: Path):
    photo = cutout(40, 30)
    background = solid(120, 20, BLUE)  # a very different aspect ratio
    plan = OutputPlan("bg", "png", "composite", 0)
    image = render(plan, photo, [background])
    reloaded = save_and_reload(image, tmp_path / "x.png", "png")
    assert (reloaded.width, reloaded.height, reloaded.bands) == (40, 30, 3)
    assert reloaded(0, 0) == BLUE  # alpha 0 in the corner
    assert reloaded(20, 15) == RED  # alpha 255 in the middle


def test_composite_jpeg_has_three_bands(tmp_path: Path):
    image = render(OutputPlan(None, "jpg", "composite", 0), cutout(), [solid(30, 30, BLUE)])
    assert save_and_reload(image, tmp_path / "x.jpg", "jpg").bands == 3


def test_retouched_is_rendered_unchanged():
    photo = cutout()
    assert render(OutputPlan(None, "png", "retouched"), photo, []) is photo


def tagged(image: pyvips.Image) -> pyvips.Image:
    """Return a copy of the image carrying XMP, a PNG comment and EXIF."""
    image = image.copy()
    image.set_type(pyvips.GValue.blob_type, "xmp-data", b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>")
    image.set_type(pyvips.GValue.gstr_type, "png-comment-0-Comment", "made by a test")
    image.set_type(pyvips.GValue.gstr_type, "exif-ifd0-Artist", "tester")
    return image


def test_png_keeps_metadata_by_default(tmp_path: Path):
    fields = save_and_reload(tagged(cutout()), tmp_path / "m.png", "png").get_fields()
    assert "xmp-data" in fields
    assert any(f.startswith("png-comment-") for f in fields)


def test_strip_metadata_png_has_no_metadata(tmp_path: Path):
    fields = save_and_reload(tagged(cutout()), tmp_path / "s.png", "png", strip_metadata=True).get_fields()
    leftovers = [f for f in fields if f.startswith(("exif", "xmp", "icc", "png-comment", "iptc"))]
    assert leftovers == []


def test_jpeg_quality_changes_file_size(tmp_path: Path):
    noise = (pyvips.Image.gaussnoise(128, 128, mean=128, sigma=40).cast("uchar")
             .bandjoin([pyvips.Image.gaussnoise(128, 128, mean=128, sigma=40).cast("uchar")] * 2)
             .copy(interpretation="srgb"))
    save(noise, tmp_path / "low.jpg", "jpg", quality=20)
    save(noise, tmp_path / "high.jpg", "jpeg", quality=95)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpg").stat().st_size / 2


def test_save_uses_format_not_path_suffix(tmp_path: Path):
    path = tmp_path / ".IMG_1.webp.w.skylab-part"
    save(cutout(), path, "webp")
    reloaded = load_checked(path)
    assert reloaded.get("vips-loader").startswith("webp")
    assert reloaded.bands == 4
    save(cutout(), path, "jpg")
    assert load_checked(path).get("vips-loader").startswith("jpeg")


def test_save_rejects_unknown_format(tmp_path: Path):
    with pytest.raises(ValueError):
        save(cutout(), tmp_path / "a.tif", "tiff")


# --- load_checked ------------------------------------------------------------------

def written(tmp_path: Path, name: str, fmt: str) -> bytes:
    """Save a noisy test image (so it is not tiny) and return its bytes."""
    noise = pyvips.Image.gaussnoise(64, 64, mean=128, sigma=40).cast("uchar")
    image = noise.bandjoin([noise, noise]).copy(interpretation="srgb")
    save(image, tmp_path / name, fmt)
    return (tmp_path / name).read_bytes()


@pytest.mark.parametrize("fmt", ["png", "jpg", "webp"])
def test_load_checked_accepts_a_complete_file(tmp_path: Path, fmt: str):
    written(tmp_path, f"ok.{fmt}", fmt)
    image = load_checked(tmp_path / f"ok.{fmt}")
    assert (image.width, image.height) == (64, 64)


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_load_checked_rejects_truncated_file(tmp_path: Path, fmt: str):
    data = written(tmp_path, f"full.{fmt}", fmt)
    broken = tmp_path / f"broken.{fmt}"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="broken"):
        load_checked(broken)


def test_load_checked_rejects_garbage(tmp_path: Path):
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"this is not an image" * 50)
    with pytest.raises(ImageError, match="garbage.jpg") as caught:
        load_checked(garbage)
    assert isinstance(caught.value, SkylabWatchError)


def test_load_checked_rejects_missing_file(tmp_path: Path):
    with pytest.raises(ImageError):
        load_checked(tmp_path / "nope.png")


# --- camera sizes ------------------------------------------------------------------
# Issue 8: every output kind from a 4000x3000 JPEG original and a 6000x4000 PNG
# original, with results as Studio sends them, written the way the daemon writes
# them (`write_output`, one sequential read of Studio's file per output).

SUBJECT = (40, 90, 160)
BACKDROP = (215, 210, 200)


def camera_photo(width: int, height: int, subject=SUBJECT, backdrop=BACKDROP) -> pyvips.Image:
    """Return a photo-like RGBA image in memory: lit backdrop, elliptical subject (opaque alpha), film grain.

    Drawn at 1/8 size and enlarged (the mask smoothly, so its edge is soft
    as in a real cut-out); the grain is a small noise tile repeated, so a
    24 MP image takes well under a second to make.
    """
    small_w, small_h = width // 8, height // 8
    xy = pyvips.Image.xyz(small_w, small_h)
    x, y = xy[0], xy[1]
    light = x * (40.0 / small_w) + y * (30.0 / small_h) - 35
    inside = ((x - small_w / 2) ** 2 / (0.3 * small_w) ** 2
              + (y - small_h / 2) ** 2 / (0.35 * small_h) ** 2) < 1
    colour = inside.ifthenelse(light * -1 + list(subject), light + list(backdrop)).cast("uchar").zoom(8, 8)
    alpha = inside.ifthenelse(255, 0).cast("uchar").resize(8, kernel="linear")  # a soft edge, as Studio's
    grain = pyvips.Image.gaussnoise(509, 311, sigma=6).cast("char").copy_memory()
    grain = grain.replicate(width // 509 + 1, height // 311 + 1).crop(0, 0, width, height)
    rgb = (colour + grain).cast("uchar")
    photo = rgb.bandjoin(alpha).copy(interpretation="srgb").copy_memory()
    assert (photo.width, photo.height) == (width, height)
    return photo


class Camera:
    """Studio's results and the profile's backgrounds at camera sizes, written once per module."""

    def __init__(self, folder: Path):
        small = camera_photo(4000, 3000)
        self.cutout_4k_png = folder / "IMG_4k.png"  # extract result for IMG_4k.jpg
        small.pngsave(str(self.cutout_4k_png), compression=1)
        self.cutout_4k_webp = folder / "IMG_4k.webp"  # the same, as a WebP extract result
        small.webpsave(str(self.cutout_4k_webp), Q=90, effort=0)
        self.retouched_4k_jpg = folder / "IMG_4k.jpg"  # plain result for IMG_4k.jpg
        small[0:3].jpegsave(str(self.retouched_4k_jpg), Q=92)
        self.source_4k = small
        large = camera_photo(6000, 4000, subject=(150, 60, 40))
        self.cutout_24mp_png = folder / "IMG_24mp.png"  # extract result for IMG_24mp.png, with metadata
        tagged(large).pngsave(str(self.cutout_24mp_png), compression=1)
        self.source_24mp = large
        self.bg_wide_jpg = folder / "beach.jpg"
        camera_photo(1920, 1080, subject=(230, 200, 60), backdrop=(60, 130, 210))[0:3].jpegsave(
            str(self.bg_wide_jpg))
        self.bg_square_png = folder / "studio.png"
        camera_photo(5000, 5000, subject=(30, 140, 60), backdrop=(90, 40, 110))[0:3].pngsave(
            str(self.bg_square_png), compression=1)
        self.backgrounds = [load_background(self.bg_wide_jpg.read_bytes()),
                            load_background(self.bg_square_png.read_bytes())]


@pytest.fixture(scope="module")
def camera(tmp_path_factory) -> Camera:
    """Camera-size results and backgrounds, made once for all the tests below (about 5 s)."""
    return Camera(tmp_path_factory.mktemp("camera"))


def patch_mean(image: pyvips.Image, x: int, y: int, size: int = 16) -> list[float]:
    """Return the mean of each colour band over a size x size patch (grain and JPEG noise average out)."""
    patch = image.crop(x, y, size, size)
    return [patch[band].avg() for band in range(3)]


def near(actual: list[float], expected, tolerance: float) -> bool:
    """Return True if every band is within tolerance."""
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def write(plan: OutputPlan, source: Path, backgrounds, folder: Path, strip: bool = False) -> pyvips.Image:
    """Write one output the daemon's way, check it as the daemon does, and return it opened for random access."""
    path = folder / output_name("out", plan)
    write_output(plan, source, backgrounds, path, strip_metadata=strip)
    check_decodes(path)
    return pyvips.Image.new_from_file(str(path))


def corners(image: pyvips.Image) -> list[tuple[int, int]]:
    """Return the top-left corner of a 16 px patch in each corner of the image."""
    right, bottom = image.width - 16, image.height - 16
    return [(0, 0), (right, 0), (0, bottom), (right, bottom)]


def test_extract_png_result_of_4000x3000_jpeg_gives_png_cutout_with_its_transparency(camera, tmp_path: Path):
    (plan,) = plan_outputs({"enableExtract": True, "outputFileType": "jpg"}, ".jpg", [])
    out = write(plan, camera.cutout_4k_png, [], tmp_path)
    assert (out.width, out.height, out.bands) == (4000, 3000, 4)
    assert out.get("vips-loader").startswith("pngload")
    for x, y in corners(out):
        assert out.extract_band(3).crop(x, y, 16, 16).max() == 0
    assert out.extract_band(3).crop(1990, 1490, 20, 20).min() == 255
    assert (out == camera.source_4k).min() == 255  # lossless: every pixel as Studio sent it


def test_extract_webp_result_of_4000x3000_jpeg_gives_png_cutout_with_its_transparency(camera, tmp_path: Path):
    (plan,) = plan_outputs({"enableExtract": True, "outputFileType": "webp"}, ".jpg", [])
    out = write(plan, camera.cutout_4k_webp, [], tmp_path)
    assert (out.width, out.height, out.bands) == (4000, 3000, 4)
    assert out.get("vips-loader").startswith("pngload")
    alpha = out.extract_band(3)
    assert all(alpha.crop(x, y, 16, 16).max() == 0 for x, y in corners(out))
    assert alpha.crop(1990, 1490, 20, 20).min() >= 250
    assert near(patch_mean(out, 1992, 1492), patch_mean(camera.source_4k, 1992, 1492), 3)


def test_plain_jpeg_result_of_4000x3000_jpeg_is_written_as_jpeg_at_full_size(camera, tmp_path: Path):
    (plan,) = plan_outputs({"outputFileType": "jpg"}, ".jpg", [])
    out = write(plan, camera.retouched_4k_jpg, [], tmp_path)
    assert (out.width, out.height, out.bands) == (4000, 3000, 3)
    assert out.get("vips-loader").startswith("jpegload")
    for x, y in corners(out) + [(1992, 1492)]:
        assert near(patch_mean(out, x, y), patch_mean(camera.source_4k, x, y), 3)


def test_dual_output_of_4000x3000_jpeg_gives_cutout_and_jpeg_flattened_on_white(camera, tmp_path: Path):
    profile = {"enableExtract": True, "dualFileOutput": True, "outputFileType": "jpg"}
    cutout_plan, flat_plan = plan_outputs(profile, ".jpg", [])
    cut = write(cutout_plan, camera.cutout_4k_png, [], tmp_path)  # the same file read twice, as delivery does
    flat = write(flat_plan, camera.cutout_4k_png, [], tmp_path)
    assert (cut.bands, flat.bands) == (4, 3)
    assert (flat.width, flat.height) == (4000, 3000)
    assert flat.get("vips-loader").startswith("jpegload")
    assert all(near(patch_mean(flat, x, y), (255, 255, 255), 2) for x, y in corners(flat))
    assert near(patch_mean(flat, 1992, 1492), patch_mean(camera.source_4k, 1992, 1492), 3)


def test_background_replacement_of_4000x3000_jpeg_shows_the_wide_background_where_cutout_is_clear(
        camera, tmp_path: Path):
    profile = {"enableExtract": True, "replaceBackground": True, "outputFileType": "jpg"}
    (plan,) = plan_outputs(profile, ".jpg", ["beach"])
    out = write(plan, camera.cutout_4k_png, camera.backgrounds, tmp_path)
    assert (out.width, out.height, out.bands) == (4000, 3000, 3)
    assert out.get("vips-loader").startswith("jpegload")
    fitted = fit_background(camera.backgrounds[0], 4000, 3000)
    for x, y in corners(out):
        assert near(patch_mean(out, x, y), patch_mean(fitted, x, y), 3)
        assert not near(patch_mean(out, x, y), patch_mean(camera.source_4k, x, y), 20)
    assert near(patch_mean(out, 1992, 1492), patch_mean(camera.source_4k, 1992, 1492), 3)


def test_dual_background_replacement_of_6000x4000_png_writes_every_output_at_full_size(camera, tmp_path: Path):
    profile = {"enableExtract": True, "replaceBackground": True, "dualFileOutput": True,
               "outputFileType": "jpg", "enableStripPngMetadata": True}
    plans = plan_outputs(profile, ".png", ["beach", "studio"])
    assert [output_name("IMG_24mp", p) for p in plans] == [
        "IMG_24mp.png", "IMG_24mp (beach).jpg", "IMG_24mp (studio).jpg"]
    cut, beach, studio = (write(p, camera.cutout_24mp_png, camera.backgrounds, tmp_path,
                                strip=strips_metadata(profile, p)) for p in plans)
    assert (cut.width, cut.height, cut.bands) == (6000, 4000, 4)
    assert "xmp-data" in pyvips.Image.new_from_file(str(camera.cutout_24mp_png)).get_fields()
    assert [f for f in cut.get_fields() if f.startswith(("exif", "xmp", "png-comment"))] == []
    assert all(cut.extract_band(3).crop(x, y, 16, 16).max() == 0 for x, y in corners(cut))
    assert (cut == camera.source_24mp).min() == 255
    for index, out in enumerate((beach, studio)):
        assert (out.width, out.height, out.bands) == (6000, 4000, 3)
        fitted = fit_background(camera.backgrounds[index], 6000, 4000)
        assert all(near(patch_mean(out, x, y), patch_mean(fitted, x, y), 3) for x, y in corners(out))
        assert near(patch_mean(out, 2992, 1992), patch_mean(camera.source_24mp, 2992, 1992), 3)


_MEASURE_ONE_DELIVERY = """
import sys
from pathlib import Path
from skylab_watch import imaging, outputs

def peak_mb():
    # VmHWM, not getrusage's ru_maxrss: that one keeps the forking parent's (pytest's) peak across exec.
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024

result, background, out = (Path(arg) for arg in sys.argv[1:4])
backgrounds = [imaging.load_background(background.read_bytes())]
before = peak_mb()
imaging.check_decodes(result)
plan = imaging.OutputPlan(None, "jpg", imaging.COMPOSITE, 0)
outputs.write_atomically(out, lambda tmp: imaging.write_output(plan, result, backgrounds, tmp),
                         check=imaging.check_decodes)
print(before, peak_mb())
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak RSS from Linux's /proc")
def test_24mp_background_replacement_adds_less_than_half_a_decoded_image_to_peak_memory(camera, tmp_path: Path):
    # One decoded 6000x4000 RGBA image is 96 MB; the whole delivery (check the download,
    # render, stream the JPEG out, check it) must stay well below that, measured in a
    # fresh process so nothing else in the test run has raised the peak already.
    out = tmp_path / "IMG_24mp.jpg"
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE_ONE_DELIVERY, str(camera.cutout_24mp_png), str(camera.bg_wide_jpg), str(out)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "VIPS_CONCURRENCY": "2"}, check=True)
    before, peak = (float(v) for v in done.stdout.split())
    assert pyvips.Image.new_from_file(str(out)).width == 6000
    assert peak - before < 48, f"peak RSS rose by {peak - before:.0f} MB (from {before:.0f} MB to {peak:.0f} MB)"


def truncated(source: Path, folder: Path) -> Path:
    """Return a copy of the file cut off at two thirds, as an interrupted download leaves it."""
    data = source.read_bytes()
    broken = folder / f"broken{source.suffix}"
    broken.write_bytes(data[: len(data) * 2 // 3])
    return broken


@pytest.mark.parametrize("name", ["retouched_4k_jpg", "cutout_4k_webp", "cutout_24mp_png"])
def test_check_decodes_catches_truncation_of_camera_size_files_despite_reduced_decode(
        camera, tmp_path: Path, name: str):
    source = getattr(camera, name)
    check_decodes(source)
    with pytest.raises(ImageError, match="broken"):
        check_decodes(truncated(source, tmp_path))


def test_output_from_truncated_result_is_an_image_error_not_a_disk_error(camera, tmp_path: Path):
    broken = truncated(camera.cutout_4k_png, tmp_path)
    with pytest.raises(ImageError):
        write_output(OutputPlan(None, "png", "cutout"), broken, [], tmp_path / "out.png")


def test_disk_that_refuses_the_write_surfaces_as_oserror_with_its_errno():
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full, a device that answers every write with ENOSPC")
    with pytest.raises(OSError) as caught:
        save(camera_photo(800, 600), Path("/dev/full"), "png")
    assert caught.value.errno == errno.ENOSPC
    assert not isinstance(caught.value, ImageError)
