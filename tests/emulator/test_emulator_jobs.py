"""Jobs endpoints and authentication, over a real socket with raw requests."""

from __future__ import annotations

import requests
from emulator_helpers import KEY, PREFIX, make_image


def test_missing_or_wrong_api_key_is_refused_with_403_and_a_message(emu, api):
    no_key = requests.get(emu.url + PREFIX + "jobs", timeout=5)
    wrong = requests.get(emu.url + PREFIX + "jobs", headers={"X-SLT-API-KEY": "nope"}, timeout=5)
    assert no_key.status_code == wrong.status_code == 403
    assert "API key" in wrong.json()["message"]
    assert api.call("GET", "jobs").status_code == 200


def test_unknown_endpoint_answers_404_with_message(api):
    response = api.call("GET", "nothing/here")
    assert response.status_code == 404
    assert response.json()["message"]


def test_create_get_and_list_jobs_answer_camel_case_jobs(api):
    profile = api.profile()
    job = api.job("first", profile["id"])
    assert job["type"] == "regular" and job["status"] == "pending"
    assert job["profileId"] == profile["id"] and job["profile"]["id"] == profile["id"]
    assert job["photos"] == [] and job["queuedAt"] is None and job["createdAt"].endswith("Z")
    assert api.ok("GET", f"jobs/{job['id']}")["name"] == "first"
    assert [j["id"] for j in api.ok("GET", "jobs")] == [job["id"]]


def test_create_job_requires_name_and_an_existing_profile(api):
    profile = api.profile()
    missing_name = api.call("POST", "jobs", json={"profile_id": profile["id"]})
    missing_profile = api.call("POST", "jobs", json={"name": "x"})
    unknown_profile = api.call("POST", "jobs", json={"name": "x", "profile_id": 999})
    assert missing_name.status_code == missing_profile.status_code == unknown_profile.status_code == 422
    assert "name" in missing_name.json()["message"]
    assert "profile_id" in missing_profile.json()["message"]


def test_duplicate_job_name_is_refused_with_422(api):
    profile = api.profile()
    api.job("same", profile["id"])
    response = api.call("POST", "jobs", json={"name": "same", "profile_id": profile["id"]})
    assert response.status_code == 422
    assert "already taken" in response.json()["message"]


def test_update_job_accepts_patch_and_put(api):
    profile = api.profile()
    job = api.job("old", profile["id"])
    assert api.ok("PATCH", f"jobs/{job['id']}", json={"name": "patched"})["name"] == "patched"
    assert api.ok("PUT", f"jobs/{job['id']}", json={"name": "put"})["name"] == "put"
    other = api.job("other", profile["id"])
    clash = api.call("PATCH", f"jobs/{other['id']}", json={"name": "put"})
    assert clash.status_code == 422


def test_find_by_name_accepts_query_string_and_json_body_and_404s_when_absent(api):
    profile = api.profile()
    job = api.job("findme", profile["id"])
    assert api.ok("GET", "jobs/find_by_name", params={"name": "findme"})["id"] == job["id"]
    assert api.ok("GET", "jobs/find_by_name", json={"name": "findme"})["id"] == job["id"]
    absent = api.call("GET", "jobs/find_by_name", params={"name": "ghost"})
    assert absent.status_code == 404 and "ghost" in absent.json()["message"]


def test_unknown_job_id_answers_404(api):
    assert api.call("GET", "jobs/424242").status_code == 404
    assert api.call("GET", "jobs/abc").status_code == 404


def test_queue_answers_the_queued_job_and_jobs_in_front_counts_earlier_jobs(emu, api):
    emu.processing_seconds = 30
    profile = api.profile()
    ids = []
    for name in ("a", "b", "c"):
        job = api.job(name, profile["id"])
        api.upload(job["id"], "p.png", make_image())
        queued = api.ok("POST", f"jobs/{job['id']}/queue")
        assert queued["status"] == "queued" and queued["queuedAt"]
        ids.append(job["id"])
    answers = [api.ok("GET", f"jobs/{i}/jobs_in_front")["jobsInFront"] for i in ids]
    assert answers == [0, 1, 2]
    again = api.call("POST", f"jobs/{ids[0]}/queue")
    assert again.status_code == 422


def test_queue_without_photos_or_bytes_is_refused_with_422(api):
    profile = api.profile()
    job = api.job("empty", profile["id"])
    assert api.call("POST", f"jobs/{job['id']}/queue").status_code == 422
    api.ok("POST", "photos", json={"job_id": job["id"], "name": "nobytes.jpg"})
    response = api.call("POST", f"jobs/{job['id']}/queue")
    assert response.status_code == 422
    assert "nobytes.jpg" in response.json()["message"] and "no uploaded bytes" in response.json()["message"]


def test_cancel_makes_a_job_cancelled_and_a_second_cancel_is_422(emu, api):
    emu.processing_seconds = 30
    profile = api.profile()
    pending = api.job("pending", profile["id"])
    assert api.ok("POST", f"jobs/{pending['id']}/cancel")["status"] == "cancelled"
    queued = api.job("queued", profile["id"])
    api.upload(queued["id"], "p.png", make_image())
    api.ok("POST", f"jobs/{queued['id']}/queue")
    assert api.ok("POST", f"jobs/{queued['id']}/cancel")["status"] == "cancelled"
    assert api.call("POST", f"jobs/{queued['id']}/cancel").status_code == 422


def test_delete_job_removes_it_and_its_photos(api):
    profile = api.profile()
    job = api.job("gone", profile["id"])
    photo = api.upload(job["id"], "p.png", make_image())
    assert api.ok("GET", f"jobs/{job['id']}/photo_ids") == [photo["id"]]
    assert api.ok("DELETE", f"jobs/{job['id']}") == {"id": job["id"]}
    assert api.call("GET", f"jobs/{job['id']}").status_code == 404
    assert api.call("GET", f"photos/{photo['id']}").status_code == 404


def test_pooled_keep_alive_connection_serves_many_requests(api):
    adapter_calls = [api.call("GET", "jobs").status_code for _ in range(30)]
    assert adapter_calls == [200] * 30


def test_concurrent_creates_get_distinct_ids_and_names_stay_unique(api):
    from concurrent.futures import ThreadPoolExecutor

    profile = api.profile()
    names = [f"c{i % 10}" for i in range(40)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(
            lambda n: requests.post(api.base_url + PREFIX + "jobs", json={"name": n, "profile_id": profile["id"]},
                                    headers={"X-SLT-API-KEY": KEY}, timeout=10).status_code, names))
    jobs = api.ok("GET", "jobs")
    assert statuses.count(200) == 10 and statuses.count(422) == 30
    assert sorted(j["name"] for j in jobs) == sorted(set(names))
    assert len({j["id"] for j in jobs}) == 10
