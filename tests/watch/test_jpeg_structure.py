"""The structural proof of a JPEG: whole files of every kind a camera writes pass; cut or half-written ones fail."""

import pytest

from skylab_watch.watch.jpeg_structure import TRUNCATED, jpeg_problem
from skylab_watch.watch.validate import inspect_photo

from .helpers import noise_image


@pytest.fixture(scope="module")
def camera_jpeg() -> bytes:
    """A 4000x3000 baseline JPEG of noise (about 10 MB): a camera file's size, with real entropy-coded data."""
    return noise_image(4000, 3000).jpegsave_buffer(Q=92)


@pytest.mark.parametrize("options", [{}, {"interlace": True}, {"restart_interval": 4}, {"subsample_mode": "off"}],
                         ids=["baseline", "progressive", "restart-markers", "no-subsampling"])
def test_whole_jpegs_of_every_kind_pass(options):
    data = noise_image(640, 480).jpegsave_buffer(Q=90, **options)
    assert jpeg_problem(data) is None


def test_a_camera_size_jpeg_passes_and_inspects_ok(tmp_path, camera_jpeg):
    assert jpeg_problem(camera_jpeg) is None
    path = tmp_path / "IMG_0001.jpg"
    path.write_bytes(camera_jpeg)
    result = inspect_photo(path)
    assert result.ok, result.reason
    assert (result.width, result.height) == (4000, 3000)


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9, 0.999])
def test_a_camera_jpeg_cut_anywhere_fails_as_truncated(camera_jpeg, fraction):
    assert jpeg_problem(camera_jpeg[: int(len(camera_jpeg) * fraction)]) == TRUNCATED


def test_a_file_written_into_preallocated_space_fails_until_its_end_is_written(tmp_path, camera_jpeg):
    """A copier that sets the final size first leaves zeros where bytes are still to come; zeros decode as
    valid blocks, so only the missing end-of-image marker gives the file away."""
    half = len(camera_jpeg) // 2
    path = tmp_path / "copying.jpg"
    path.write_bytes(camera_jpeg[:half] + bytes(len(camera_jpeg) - half))
    result = inspect_photo(path)
    assert not result.ok
    assert result.reason == f"the image is truncated or corrupt: {TRUNCATED}"
    path.write_bytes(camera_jpeg)
    assert inspect_photo(path).ok


def test_bytes_after_the_end_marker_are_allowed_as_cameras_append_previews_there():
    data = noise_image(320, 240).jpegsave_buffer()
    assert jpeg_problem(data + noise_image(64, 48).jpegsave_buffer() + b"\x00" * 1000) is None


def test_stray_bytes_between_segments_are_skipped_as_libjpeg_skips_them():
    data = noise_image(320, 240).jpegsave_buffer()
    quant = data.index(b"\xff\xdb")  # pad before the quantisation table, as some cameras do
    assert jpeg_problem(data[:quant] + b"\x00\x00\x00" + data[quant:]) is None


@pytest.mark.parametrize(("data", "problem"), [
    (b"\x89PNG\r\n\x1a\n", "it does not start with a JPEG start-of-image marker"),
    (b"\xff\xd8\xff\xd9", "the JPEG stream ends before any image data"),
    (b"\xff\xd8\xff\xe0\x00\x01", "a JPEG segment with an impossible length (byte 4)"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", TRUNCATED),
    (b"\xff\xd8\xff\xda\x00\x02\x12\x34\xff\xd9", "image data before the JPEG frame header"),
    (b"\xff\xd8\xff\xd8", "a second start-of-image marker inside the stream (byte 2)"),
])
def test_broken_structures_are_named(data, problem):
    assert jpeg_problem(data) == problem
