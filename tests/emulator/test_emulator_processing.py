"""Processing: timed statuses, real pyvips outputs, limits checked at queue time."""

from __future__ import annotations

import pytest
import pyvips
import requests
from emulator_helpers import make_image


def _output(url: str) -> tuple[bytes, pyvips.Image]:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.content, pyvips.Image.new_from_buffer(response.content, "")


def test_queued_job_goes_through_processing_to_completed_with_retouched_urls(emu, api):
    emu.processing_seconds = 0.6
    job = api.job("timed", api.profile()["id"])
    api.upload(job["id"], "a.png", make_image())
    assert api.ok("POST", f"jobs/{job['id']}/queue")["status"] == "queued"
    processing = api.wait_status(job["id"], "processing")
    assert processing["photos"][0]["retouchedUrl"] is None
    done = api.wait_status(job["id"], "completed")
    assert done["completedAt"] and done["photos"][0]["retouchedUrl"].startswith(emu.url)
    assert "status" not in done["photos"][0]  # photos carry no status (the JS client reads one as an error)


def test_extract_output_is_rgba_with_a_real_mask(api):
    profile = api.profile(name="extract", enable_extract=True)
    job = api.ready_job("extract", profile, {"shoe.jpg": make_image(fmt=".jpg")})
    _, image = _output(job["photos"][0]["retouchedUrl"])
    assert image.get("vips-loader").startswith("png")
    assert image.bands == 4
    assert image[3].min() == 0 and image[3].max() == 255


@pytest.mark.parametrize("file_type, loader", [("jpg", "jpeg"), ("webp", "webp"), ("png", "png")])
def test_plain_output_is_a_changed_image_in_the_profile_output_type(api, file_type, loader):
    original = make_image()
    profile = api.profile(name=file_type, output_file_type=file_type)
    job = api.ready_job(f"type-{file_type}", profile, {"p.png": original})
    _, image = _output(job["photos"][0]["retouchedUrl"])
    assert image.get("vips-loader").startswith(loader)
    source = pyvips.Image.new_from_buffer(original, "")
    assert (image.width, image.height) == (source.width, source.height)
    assert abs(image[0:3].avg() - source[0:3].avg()) > 1


def test_enable_crop_crops_the_output_a_little(api):
    profile = api.profile(name="crop", enable_crop=True)
    job = api.ready_job("crop", profile, {"p.png": make_image(200, 100)})
    _, image = _output(job["photos"][0]["retouchedUrl"])
    assert 150 < image.width < 200 and 75 < image.height < 100


def test_same_input_gives_the_same_output_bytes(api):
    profile = api.profile(name="cut", enable_extract=True)
    data = make_image()
    first = api.ready_job("det-1", profile, {"a.png": data})
    second = api.ready_job("det-2", profile, {"a.png": data})
    url_a, url_b = first["photos"][0]["retouchedUrl"], second["photos"][0]["retouchedUrl"]
    assert _output(url_a)[0] == _output(url_b)[0] == _output(url_a)[0]


def test_image_over_the_side_limit_is_refused_when_queued(api):
    job = api.job("wide", api.profile()["id"])
    api.upload(job["id"], "wide.png", make_image(6500, 10))
    response = api.call("POST", f"jobs/{job['id']}/queue")
    assert response.status_code == 422
    assert "wide.png" in response.json()["message"] and "6400" in response.json()["message"]
    assert api.ok("GET", f"jobs/{job['id']}")["status"] == "pending"


def test_undecodable_upload_is_refused_when_queued(api):
    job = api.job("garbage", api.profile()["id"])
    api.upload(job["id"], "junk.jpg", b"not an image at all")
    response = api.call("POST", f"jobs/{job['id']}/queue")
    assert response.status_code == 422 and "junk.jpg" in response.json()["message"]


def test_limit_problem_names_the_side_and_megapixel_limits():
    from skylab_watch.emulator.processing import limit_problem

    assert limit_problem(6400, 4000) is None
    assert "6400 px" in limit_problem(6401, 10)
    assert "27 megapixels" in limit_problem(6000, 5000)
