"""Profiles, photos and the presigned object store."""

from __future__ import annotations

import time

import requests
from emulator_helpers import Api, make_image, md5_b64, put_headers, wait_until

from skylab_watch.emulator import Emulator


def test_profiles_can_be_created_read_updated_and_listed(api):
    profile = api.profile(name="cutout", enable_extract=True, output_file_type="webp", description="d")
    assert profile["enableExtract"] is True and profile["outputFileType"] == "webp"
    assert profile["replaceBackground"] is False and profile["photos"] == []
    updated = api.ok("PATCH", f"profiles/{profile['id']}", json={"replace_background": True, "enable_crop": True})
    assert updated["replaceBackground"] is True and updated["enableCrop"] is True
    assert api.ok("GET", f"profiles/{profile['id']}")["description"] == "d"
    assert [p["id"] for p in api.ok("GET", "profiles")] == [profile["id"]]


def test_profile_validation_answers_422(api):
    assert api.call("POST", "profiles", json={}).status_code == 422
    bad_type = api.call("POST", "profiles", json={"name": "x", "output_file_type": "gif"})
    assert bad_type.status_code == 422 and "output_file_type" in bad_type.json()["message"]


def test_backgrounds_are_only_accepted_on_extract_and_replace_background_profiles(api):
    plain = api.profile(name="plain", enable_extract=True)
    refused = api.call("POST", "photos", json={"profile_id": plain["id"], "name": "bg.jpg"})
    assert refused.status_code == 422 and "replace_background" in refused.json()["message"]
    replacing = api.profile(name="replacing", enable_extract=True, replace_background=True)
    background = api.upload(replacing["id"], "bg.jpg", make_image(fmt=".jpg"), key="profile_id")
    photos = api.ok("GET", f"profiles/{replacing['id']}")["photos"]
    assert [p["id"] for p in photos] == [background["id"]]
    assert photos[0]["jobId"] is None and photos[0]["originalUrl"].startswith("http")


def test_photo_lifecycle_create_upload_get_list_delete(emu, api):
    profile = api.profile()
    job = api.job("photos", profile["id"])
    data = make_image()
    photo = api.upload(job["id"], "one.png", data)
    assert photo["originalUrl"] is None and photo["job"] == {"id": job["id"], "profileId": profile["id"]}
    fetched = api.ok("GET", f"photos/{photo['id']}")
    assert requests.get(fetched["originalUrl"], timeout=5).content == data
    by_id = api.ok("GET", "photos/list_for_job", params={"job_id": job["id"]})
    by_name = api.ok("GET", "photos/list_for_job", json={"job_name": "photos"})
    assert [p["id"] for p in by_id] == [p["id"] for p in by_name] == [photo["id"]]
    admin = next(p for p in emu.state()["photos"] if p["id"] == photo["id"])
    assert admin["tagging"] == "job=photo&api=true" and admin["size"] == len(data)
    assert api.ok("DELETE", f"photos/{photo['id']}") == {"id": photo["id"]}
    assert api.call("GET", f"photos/{photo['id']}").status_code == 404


def test_duplicate_photo_name_and_bad_extension_are_422(api):
    job = api.job("dups", api.profile()["id"])
    api.ok("POST", "photos", json={"job_id": job["id"], "name": "a.JPG"})
    duplicate = api.call("POST", "photos", json={"job_id": job["id"], "name": "a.JPG"})
    assert duplicate.status_code == 422 and "a.JPG" in duplicate.json()["message"]
    extension = api.call("POST", "photos", json={"job_id": job["id"], "name": "a.gif"})
    assert extension.status_code == 422 and "extension" in extension.json()["message"]


def _upload_url(api: Api, data: bytes) -> tuple[dict, str]:
    job = api.job(f"store-{time.monotonic_ns()}", api.profile()["id"])
    photo = api.ok("POST", "photos", json={"job_id": job["id"], "name": "x.png"})
    url = api.ok("GET", "photos/upload_url", json={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"]
    return photo, url


def test_put_with_bytes_not_matching_content_md5_answers_bad_digest(api):
    data = make_image()
    _, url = _upload_url(api, data)
    response = requests.put(url, data=data + b"x", headers=put_headers(data), timeout=5)
    assert response.status_code == 400 and "<Code>BadDigest</Code>" in response.text
    assert requests.put(url, data=data, headers=put_headers(data), timeout=5).status_code == 200


def test_tampered_signature_answers_403_signature_does_not_match(api):
    data = make_image()
    _, url = _upload_url(api, data)
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    response = requests.put(tampered, data=data, headers=put_headers(data), timeout=5)
    assert response.status_code == 403 and "SignatureDoesNotMatch" in response.text
    other_path = url.replace("/originals/", "/originals/9")
    assert requests.put(other_path, data=data, headers=put_headers(data), timeout=5).status_code == 403


def test_expired_upload_url_answers_403_request_has_expired():
    with Emulator(api_key="k", upload_url_seconds=0) as emu:
        api = Api(emu.url, "k")
        data = make_image()
        _, url = _upload_url(api, data)
        def put() -> requests.Response:
            return requests.put(url, data=data, headers=put_headers(data), timeout=5)

        response = wait_until(lambda: (lambda r: [r] if r.status_code == 403 else None)(put()), timeout=5)[0]
        assert "Request has expired" in response.text and "AccessDenied" in response.text


def test_put_over_27_mib_is_refused_with_entity_too_large(api):
    data = b"\0" * (27 * 1024 * 1024 + 1)
    _, url = _upload_url(api, data)
    response = requests.put(url, data=data, headers=put_headers(data), timeout=30)
    assert response.status_code == 400 and "EntityTooLarge" in response.text


def test_store_urls_need_no_api_key_and_reject_wrong_method(api):
    data = make_image()
    photo, url = _upload_url(api, data)
    assert requests.put(url, data=data, headers=put_headers(data), timeout=5).status_code == 200
    original = api.ok("GET", f"photos/{photo['id']}")["originalUrl"]
    assert requests.put(original, data=data, timeout=5).status_code == 403


def test_a_chunked_put_is_refused_not_stored_empty(emu):
    import requests
    from emulator_helpers import KEY
    h = {"X-SLT-API-KEY": KEY}
    base = emu.url + "/api/public/v1/"
    profile = requests.post(base + "profiles", json={"name": "p"}, headers=h).json()
    job = requests.post(base + "jobs", json={"name": "j", "profile_id": profile["id"]}, headers=h).json()
    photo = requests.post(base + "photos", json={"name": "a.jpg", "job_id": job["id"]}, headers=h).json()
    url = requests.get(base + "photos/upload_url", params={"photo_id": photo["id"]}, headers=h).json()["url"]
    answer = requests.put(url, data=iter([b"abc", b"def"]))  # a generator body is sent chunked
    assert answer.status_code == 411 and b"MissingContentLength" in answer.content
    assert requests.get(base + f"photos/{photo['id']}", headers=h).json()["originalUrl"] is None
