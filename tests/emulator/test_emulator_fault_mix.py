"""The fault document's keys for a night of trouble: rule lists, "after" rules,
PUT failure and corruption rates with repeats, expiring downloads, seeds."""

from __future__ import annotations

import time

import pytest
import requests
from emulator_helpers import Api, make_image, md5_b64, put_headers

from skylab_watch.emulator import Emulator, FaultError


def _statuses(api: Api, n: int, endpoint: str = "jobs") -> list[int]:
    return [api.call("GET", endpoint).status_code for _ in range(n)]


def test_a_list_of_rules_per_key_fires_each_rule_at_its_own_rate(emu, api):
    emu.set_faults({"seed": 3, "errors": {"*": [{"status": 503, "rate": 0.2},
                                                {"status": 429, "rate": 0.2, "retry_after": 1}]}})
    answers = [api.call("GET", "jobs") for _ in range(200)]
    counts = {s: sum(a.status_code == s for a in answers) for s in (200, 429, 503)}
    assert 20 <= counts[503] <= 60 and 15 <= counts[429] <= 55 and counts[200] > 100
    assert all(a.headers["Retry-After"] == "1" for a in answers if a.status_code == 429)


def test_star_rules_still_apply_when_the_key_has_its_own_rule_and_never_to_the_store(emu, api):
    job = api.ready_job("star", api.profile(), {"a.png": make_image()})
    emu.set_faults({"errors": {"GET jobs": {"status": 502, "count": 1}, "*": {"status": 500}}})
    assert _statuses(api, 2) == [502, 500]
    assert requests.get(job["photos"][0]["retouchedUrl"], timeout=5).status_code == 200


def test_rate_faults_are_the_same_for_the_same_seed_whatever_other_calls_interleave(emu, api):
    doc = {"seed": 11, "errors": {"*": {"status": 500, "rate": 0.3}}}
    emu.set_faults(doc, replace=True)
    alone = _statuses(api, 30)
    emu.set_faults(doc, replace=True)
    mixed = []
    for _ in range(30):
        mixed.append(api.call("GET", "jobs").status_code)
        api.call("GET", "profiles")  # another identity: draws of its own
    assert alone == mixed and 500 in alone and 200 in alone
    emu.set_faults({"seed": 12}, replace=False)
    assert _statuses(api, 30) != alone


def test_after_rule_lets_the_endpoint_act_and_then_answers_the_error(emu, api):
    profile = api.profile()
    job = api.job("after", profile["id"])
    emu.set_faults({"errors": {"POST photos": {"status": 502, "count": 1, "after": True}}})
    lost = api.call("POST", "photos", json={"job_id": job["id"], "name": "a.jpg"})
    assert lost.status_code == 502
    names = [p["name"] for p in api.ok("GET", "photos/list_for_job", params={"job_id": job["id"]})]
    assert names == ["a.jpg"]  # created although the answer said 502
    emu.set_faults({"errors": {"POST jobs": {"status": 503, "count": 1}}})
    assert api.call("POST", "jobs", json={"name": "before", "profile_id": profile["id"]}).status_code == 503
    assert api.call("GET", "jobs/find_by_name", params={"name": "before"}).status_code == 404


def test_after_rule_on_put_store_keeps_the_bytes_and_answers_the_error(emu, api):
    job = api.job("put-after", api.profile()["id"])
    photo = api.ok("POST", "photos", json={"job_id": job["id"], "name": "a.png"})
    data = make_image()
    url = api.ok("GET", "photos/upload_url", params={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"]
    emu.set_faults({"errors": {"PUT store": {"status": 500, "count": 1, "after": True}}})
    assert requests.put(url, data=data, headers=put_headers(data), timeout=5).status_code == 500
    assert api.ok("GET", f"photos/{photo['id']}")["originalUrl"] is not None


def _photo_urls(api: Api, n: int, data: bytes) -> list[str]:
    job = api.job(f"puts-{time.monotonic_ns()}", api.profile()["id"])
    urls = []
    for i in range(n):
        photo = api.ok("POST", "photos", json={"job_id": job["id"], "name": f"{i}.png"})
        urls.append(api.ok("GET", "photos/upload_url",
                           params={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"])
    return urls


def test_put_fail_rate_fails_that_share_of_puts_with_put_fail_status(emu, api):
    data = make_image()
    urls = _photo_urls(api, 60, data)
    emu.set_faults({"seed": 5, "put_fail_rate": 0.25, "put_fail_status": 503})
    statuses = [requests.put(u, data=data, headers=put_headers(data), timeout=5).status_code for u in urls]
    assert set(statuses) == {200, 503} and 6 <= statuses.count(503) <= 27


def test_put_corrupt_repeat_keeps_a_photo_corrupted_for_that_many_consecutive_puts(emu, api):
    data = make_image()
    url = _photo_urls(api, 1, data)[0]
    emu.set_faults({"put_corrupt_next": 1, "put_corrupt_repeat": 2})

    def put() -> int:
        return requests.put(url, data=data, headers=put_headers(data), timeout=5).status_code

    assert [put(), put(), put()] == [400, 400, 200]


def test_put_corrupt_rate_starts_streaks_of_bad_digests(emu, api):
    data = make_image()
    urls = _photo_urls(api, 40, data)
    emu.set_faults({"seed": 2, "put_corrupt_rate": 0.3, "put_corrupt_repeat": 2})
    runs = []
    for url in urls:
        answers = []
        while not answers or answers[-1].status_code != 200:
            answers.append(requests.put(url, data=data, headers=put_headers(data), timeout=5))
            assert len(answers) < 10
        runs.append(len(answers) - 1)
    assert all("BadDigest" in a.text for a in answers[:-1])
    assert 0 in runs and any(r >= 2 for r in runs)


def test_expire_downloads_rate_refuses_that_share_of_retouched_gets(emu, api):
    job = api.ready_job("expiring", api.profile(), {"a.png": make_image()})
    url = job["photos"][0]["retouchedUrl"]
    emu.set_faults({"seed": 1, "expire_downloads_rate": 0.5})
    answers = [requests.get(url, timeout=5) for _ in range(30)]
    expired = [a for a in answers if a.status_code == 403]
    assert 5 <= len(expired) <= 25 and all("Request has expired" in a.text for a in expired)
    assert len(expired) + sum(a.status_code == 200 for a in answers) == 30


@pytest.mark.parametrize("doc, named", [
    ({"errors": {"*": [{"status": 500, "rate": 2}]}}, "errors['*'][0].rate"),
    ({"errors": {"GET jobs": {"status": 500, "after": "yes"}}}, "after"),
    ({"put_corrupt_repeat": 0}, "put_corrupt_repeat"),
    ({"put_fail_rate": -0.1}, "put_fail_rate"),
    ({"expire_downloads_rate": "often"}, "expire_downloads_rate"),
    ({"variants": ["slim-job-photos", "bogus"]}, "bogus"),
])
def test_bad_new_fault_keys_are_refused_naming_the_key(doc, named):
    with pytest.raises(FaultError) as refused:
        Emulator(api_key="k", faults=doc)
    assert named in str(refused.value)


def test_a_night_of_trouble_is_one_valid_document(emu):
    night = {
        "seed": 42,
        "errors": {"*": [{"status": 500, "rate": 0.10}, {"status": 429, "rate": 0.05, "retry_after": 1}],
                   "POST photos": [{"status": 502, "count": 1, "after": True}]},
        "put_fail_rate": 0.05, "put_corrupt_rate": 0.02, "put_corrupt_repeat": 2,
        "expire_downloads_rate": 0.05, "out_of_credits": True,
    }
    current = emu.set_faults(night)
    assert current["errors"]["*"][1]["retry_after"] == 1 and emu.state()["out_of_credits"] is True
