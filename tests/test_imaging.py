"""Tests of skylab_watch.imaging: output planning, rendering, saving and decode checks, on real images."""

from __future__ import annotations

from pathlib import Path

import pyvips
import pytest

from skylab_watch.errors import SkylabWatchError
from skylab_watch.imaging import (
    ImageError, OutputPlan, composite_over, fit_background, flatten, has_alpha,
    load_checked, output_name, plan_outputs, render, save, strips_metadata,
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
