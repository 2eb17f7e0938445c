"""Issue 8's emulator fixes: photo answers without status, extensionless names,
bg_photos, signed tagging, sizes read at PUT time, and the core without sockets."""

from __future__ import annotations

import json
import time

import pytest
import requests
from emulator_helpers import KEY, make_image, md5_b64, put_headers

from skylab_watch.emulator import Studio, processing
from skylab_watch.emulator.protocol import Request


def test_photo_create_and_every_photo_view_carry_no_status(api):
    profile = api.profile(name="bg", enable_extract=True, replace_background=True)
    job = api.job("no-status", profile["id"])
    created = api.ok("POST", "photos", json={"job_id": job["id"], "name": "a.jpg"})
    background = api.ok("POST", "photos", json={"profile_id": profile["id"], "name": "beach.jpg"})
    views = [created, background, api.ok("GET", f"photos/{created['id']}"),
             *api.ok("GET", "photos/list_for_job", params={"job_id": job["id"]}),
             *api.ok("GET", f"jobs/{job['id']}")["photos"], *api.ok("GET", f"profiles/{profile['id']}")["photos"]]
    assert all("status" not in view for view in views)


def test_photo_named_without_an_extension_is_accepted_and_processed(api):
    job = api.ready_job("bare", api.profile(), {"IMG_0001": make_image(fmt=".jpg")})
    assert job["photos"][0]["name"] == "IMG_0001"
    assert requests.get(job["photos"][0]["retouchedUrl"], timeout=10).status_code == 200
    other = api.job("bad-ext", api.profile(name="p2")["id"])
    refused = api.call("POST", "photos", json={"job_id": other["id"], "name": "scan.tiff"})
    assert refused.status_code == 422 and ".tiff" not in refused.json()["message"].split("use one of")[1]


def test_bg_photos_lists_a_profiles_background_photos(api):
    profile = api.profile(name="beach", enable_extract=True, replace_background=True)
    first = api.upload(profile["id"], "sand.jpg", make_image(fmt=".jpg"), key="profile_id")
    second = api.upload(profile["id"], "sea.png", make_image(), key="profile_id")
    backgrounds = api.ok("GET", f"profiles/{profile['id']}/bg_photos")
    assert [b["id"] for b in backgrounds] == [first["id"], second["id"]]
    assert all(b["jobId"] is None and b["originalUrl"].startswith("http") for b in backgrounds)
    assert api.ok("GET", f"profiles/{api.profile(name='plain')['id']}/bg_photos") == []
    assert api.call("GET", "profiles/999/bg_photos").status_code == 404


def _job_photo_url(api, data: bytes) -> str:
    job = api.job(f"tag-{time.monotonic_ns()}", api.profile()["id"])
    photo = api.ok("POST", "photos", json={"job_id": job["id"], "name": "t.jpg"})
    return api.ok("GET", "photos/upload_url", params={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"]


@pytest.mark.parametrize("tagging", [None, "job=photo&api=false"])
def test_put_of_a_regular_job_photo_without_the_signed_tagging_is_refused(api, tagging):
    data = make_image()
    url = _job_photo_url(api, data)
    refused = requests.put(url, data=data, headers=put_headers(data, tagging), timeout=5)
    assert refused.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in refused.text
    assert requests.put(url, data=data, headers=put_headers(data), timeout=5).status_code == 200


def test_background_photo_upload_needs_no_tagging(api):
    profile = api.profile(name="bgs", enable_extract=True, replace_background=True)
    data = make_image()
    photo = api.ok("POST", "photos", json={"profile_id": profile["id"], "name": "b.png"})
    url = api.ok("GET", "photos/upload_url", params={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"]
    assert requests.put(url, data=data, headers=put_headers(data, None), timeout=5).status_code == 200


# ---- the core, without sockets ---------------------------------------------

def _call(studio: Studio, method: str, endpoint: str, payload: dict | None = None) -> tuple[int, object]:
    body = json.dumps(payload).encode() if payload is not None else b""
    response = studio.handle(Request(method, "/api/public/v1/" + endpoint, {}, {"x-slt-api-key": KEY}, body))
    return response.status, json.loads(response.body)


def _put(studio: Studio, url: str, data: bytes) -> int:
    path, _, query = url.removeprefix(studio.base_url).partition("?")
    params = dict(pair.split("=", 1) for pair in query.split("&"))
    params = {k: requests.utils.unquote(v) for k, v in params.items()}
    headers = {k.lower(): v for k, v in put_headers(data).items()}
    return studio.handle(Request("PUT", path, params, headers, data)).status


def test_studio_core_serves_the_api_through_handle_alone():
    studio = Studio(api_key=KEY, processing_seconds=0.0)
    status, profile = _call(studio, "POST", "profiles", {"name": "core"})
    assert status == 200 and profile["name"] == "core"
    status, job = _call(studio, "POST", "jobs", {"name": "core-job", "profile_id": profile["id"]})
    data = make_image()
    _, photo = _call(studio, "POST", "photos", {"job_id": job["id"], "name": "a.png"})
    _, upload = _call(studio, "GET", "photos/upload_url", {"photo_id": photo["id"], "content_md5": md5_b64(data)})
    assert _put(studio, upload["url"], data) == 200
    assert _call(studio, "POST", f"jobs/{job['id']}/queue")[0] == 200
    status, done = _call(studio, "GET", f"jobs/{job['id']}")
    assert done["status"] == "completed" and done["photos"][0]["retouchedUrl"]
    assert _call(studio, "GET", "nowhere")[0] == 404


def test_queueing_many_photos_decodes_nothing_because_sizes_are_read_at_put(monkeypatch):
    studio = Studio(api_key=KEY, processing_seconds=30)
    _, profile = _call(studio, "POST", "profiles", {"name": "many"})
    _, job = _call(studio, "POST", "jobs", {"name": "many", "profile_id": profile["id"]})
    data = make_image(640, 480, ".jpg")
    for n in range(200):
        _, photo = _call(studio, "POST", "photos", {"job_id": job["id"], "name": f"{n}.jpg"})
        _, upload = _call(studio, "GET", "photos/upload_url", {"photo_id": photo["id"]})
        assert _put(studio, upload["url"], data) == 200
    assert {(p.width, p.height) for p in studio.state.photos.values()} == {(640, 480)}

    def no_decoding(_: bytes) -> tuple[int, int]:
        raise AssertionError("queueing must not decode images")

    monkeypatch.setattr(processing, "image_size", no_decoding)
    started = time.monotonic()
    status, queued = _call(studio, "POST", f"jobs/{job['id']}/queue")
    elapsed = time.monotonic() - started
    assert status == 200 and queued["status"] == "queued"
    assert elapsed < 1.0, f"queueing 200 photos took {elapsed:.2f}s"
