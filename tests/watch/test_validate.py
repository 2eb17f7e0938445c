import hashlib

import pytest
import pyvips

from skylab_watch.watch.validate import (
    MAX_BYTES,
    header_readable,
    inspect_photo,
    make_resized_copy,
)

from .helpers import noise_image, write_image


@pytest.mark.parametrize("name", ["a.jpg", "b.jpeg", "c.png", "d.webp", "E.JPG"])
def test_good_photos_pass_with_dimensions_and_md5(tmp_path, name):
    path = write_image(tmp_path / name, 64, 48)
    result = inspect_photo(path)
    assert result.ok and result.reason is None and not result.oversized
    assert (result.width, result.height) == (64, 48)
    assert result.size == path.stat().st_size
    assert result.md5 == hashlib.md5(path.read_bytes()).hexdigest()


def test_vanished_file(tmp_path):
    result = inspect_photo(tmp_path / "gone.jpg")
    assert not result.ok
    assert result.reason == "the file disappeared before it could be checked"


def test_empty_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    result = inspect_photo(tmp_path / "empty.jpg")
    assert (result.ok, result.reason) == (False, "the file is empty (0 bytes)")


@pytest.mark.parametrize("suffix", [".tif", ".gif"])
def test_unsupported_extension_names_the_accepted_types(tmp_path, suffix):
    path = tmp_path / f"scan{suffix}"
    noise_image(32, 32).write_to_file(str(path))
    result = inspect_photo(path)
    assert not result.ok and not result.oversized
    assert result.reason == f"unsupported file type '{suffix}': Studio accepts .jpg, .jpeg, .png, .webp"


def test_text_file_named_jpg_is_not_a_readable_image(tmp_path):
    (tmp_path / "fake.jpg").write_text("this is a shopping list, not a photo\n")
    result = inspect_photo(tmp_path / "fake.jpg")
    assert not result.ok
    assert result.reason.startswith("not a readable image: ")
    assert not header_readable(tmp_path / "fake.jpg")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_image_is_rejected_though_its_header_reads(tmp_path, suffix):
    data = noise_image(400, 300).write_to_buffer(suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: int(len(data) * 0.6)])
    assert header_readable(path)
    result = inspect_photo(path)
    assert not result.ok and not result.oversized
    assert result.reason.startswith("the image is truncated or corrupt: ")


def test_too_wide_image_is_oversized_and_mentions_the_limit(tmp_path):
    path = write_image(tmp_path / "wide.jpg", 6500, 100)
    result = inspect_photo(path)
    assert not result.ok and result.oversized
    assert "6500 x 100" in result.reason and "6400" in result.reason


def test_too_many_pixels_is_oversized(tmp_path):
    path = tmp_path / "big.jpg"
    pyvips.Image.black(5300, 5300).write_to_file(str(path))
    result = inspect_photo(path)
    assert not result.ok and result.oversized
    assert "28.1 MP" in result.reason and "27 MP" in result.reason
    assert "px on a side" not in result.reason  # 5300 px sides are fine


def test_too_many_bytes_is_oversized(tmp_path):
    path = tmp_path / "padded.jpg"
    path.write_bytes(noise_image(64, 48).write_to_buffer(".jpg") + bytes(28 * 1024 * 1024))
    result = inspect_photo(path)
    assert result.size > MAX_BYTES
    assert not result.ok and result.oversized
    assert "MiB" in result.reason and "at most 27 MiB" in result.reason
    assert result.md5 == hashlib.md5(path.read_bytes()).hexdigest()


def test_resized_copy_fits_the_limits_and_leaves_the_original(tmp_path):
    original = write_image(tmp_path / "wide.jpg", 6500, 100)
    before = original.read_bytes()
    copy = make_resized_copy(original, tmp_path / "out" / "wide.jpg")
    assert copy.ok, copy.reason
    assert (copy.width, copy.height) == (6400, 98)
    assert original.read_bytes() == before
    assert pyvips.Image.new_from_file(str(tmp_path / "out" / "wide.jpg")).get("vips-loader") == "jpegload"


def test_resized_copy_of_a_png_with_too_many_pixels_stays_png(tmp_path):
    original = tmp_path / "big.png"
    pyvips.Image.black(5300, 5300).write_to_file(str(original))
    copy = make_resized_copy(original, tmp_path / "small.png")
    assert copy.ok, copy.reason
    assert copy.width * copy.height <= 27_000_000 and copy.width > 5000
    assert pyvips.Image.new_from_file(str(tmp_path / "small.png")).get("vips-loader") == "pngload"


def test_resized_copy_applies_exif_orientation(tmp_path):
    # 7000 x 100 with a red left edge, stored with orientation 6 (turn 90 degrees clockwise)
    image = pyvips.Image.black(7000, 100, bands=3).draw_rect([255, 0, 0], 0, 0, 100, 100, fill=True).copy()
    image.set_type(pyvips.GValue.gint_type, "orientation", 6)
    original = tmp_path / "turned.jpg"
    image.write_to_file(str(original))
    copy = make_resized_copy(original, tmp_path / "upright.jpg")
    assert copy.ok, copy.reason
    assert copy.height == 6400 and copy.width == 91  # upright: 100 x 7000 scaled to fit
    result = pyvips.Image.new_from_file(str(tmp_path / "upright.jpg"))
    orientation = result.get("orientation") if result.get_typeof("orientation") else 1
    assert orientation == 1
    top, bottom = result.crop(0, 0, 91, 40), result.crop(0, result.height - 40, 91, 40)
    assert top.extract_band(0).avg() > 200 and bottom.extract_band(0).avg() < 50  # the red edge is now on top


def test_resized_copy_of_an_unreadable_file_reports_instead_of_raising(tmp_path):
    (tmp_path / "fake.jpg").write_text("not an image")
    result = make_resized_copy(tmp_path / "fake.jpg", tmp_path / "copy.jpg")
    assert not result.ok and result.reason.startswith("could not make a resized copy")
    assert not (tmp_path / "copy.jpg").exists()


def test_resized_copy_of_a_png_too_many_bytes_is_shrunk_until_it_fits(tmp_path):
    original = tmp_path / "noise.png"
    noise_image(3600, 3000).write_to_file(str(original), compression=0)
    assert inspect_photo(original).oversized
    copy = make_resized_copy(original, tmp_path / "fits.png")
    assert copy.ok, copy.reason
    assert copy.size <= MAX_BYTES and copy.width < 3600
