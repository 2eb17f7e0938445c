"""Fault injection, through the Python API and the `/_emulator/` endpoints."""

from __future__ import annotations

import time

import pytest
import requests
from emulator_helpers import Api, make_image, md5_b64, put_headers, wait_until

from skylab_watch.emulator import Emulator, FaultError


def test_error_with_count_fails_exactly_the_next_n_calls(emu, api):
    emu.set_faults({"errors": {"POST profiles": {"status": 503, "count": 2}}})
    statuses = [api.call("POST", "profiles", json={"name": "p"}).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert emu.calls()["POST profiles"] == 3


def test_429_carries_retry_after_and_star_matches_every_api_endpoint(emu, api):
    emu.set_faults({"errors": {"*": {"status": 429, "count": 1, "retry_after": 2}}})
    response = api.call("GET", "jobs")
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    assert "message" in response.json()
    assert api.call("GET", "jobs").status_code == 200


def test_rate_errors_are_reproducible_with_a_seed(emu, api):
    def run() -> list[int]:
        emu.set_faults({"seed": 7, "errors": {"GET jobs": {"status": 500, "rate": 0.5}}}, replace=True)
        return [api.call("GET", "jobs").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second and 500 in first and 200 in first


def test_out_of_credits_refuses_paid_calls_with_402_until_credits_are_added(emu, api):
    profile = api.profile()
    emu.set_faults({"out_of_credits": True})
    refused = api.call("POST", "jobs", json={"name": "j", "profile_id": profile["id"]})
    assert refused.status_code == 402 and "Out of credits" in refused.json()["message"]
    assert api.call("GET", "jobs").status_code == 200
    reply = requests.post(emu.url + "/_emulator/credits", json={"out_of_credits": False}, timeout=5)
    assert reply.status_code == 200 and emu.state()["out_of_credits"] is False
    assert api.call("POST", "jobs", json={"name": "j", "profile_id": profile["id"]}).status_code == 200


def test_latency_delays_the_answer(emu, api):
    emu.set_faults({"latency": {"GET profiles": 0.3}})
    started = time.monotonic()
    api.ok("GET", "profiles")
    slow = time.monotonic() - started
    started = time.monotonic()
    api.ok("GET", "jobs")
    assert slow >= 0.3 > time.monotonic() - started


def _fresh_url(api: Api, data: bytes) -> str:
    job = api.job(f"j{time.monotonic_ns()}", api.profile()["id"])
    photo = api.ok("POST", "photos", json={"job_id": job["id"], "name": "x.png"})
    return api.ok("GET", "photos/upload_url", params={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"]


def test_put_fail_next_and_put_corrupt_next_refuse_that_many_puts(emu, api):
    data = make_image()
    url = _fresh_url(api, data)
    emu.set_faults({"put_fail_next": 1, "put_fail_status": 502, "put_corrupt_next": 1})

    def put() -> requests.Response:
        return requests.put(url, data=data, headers=put_headers(data), timeout=5)

    first, second, third = put(), put(), put()
    assert first.status_code == 502
    assert second.status_code == 400 and "BadDigest" in second.text
    assert third.status_code == 200


def test_failed_jobs_end_failed_without_retouched_urls(emu, api):
    emu.set_faults({"fail_jobs": ["broken-*"]})
    job = api.job("broken-1", api.profile()["id"])
    api.upload(job["id"], "a.png", make_image())
    api.ok("POST", f"jobs/{job['id']}/queue")
    failed = api.wait_status(job["id"], "failed")
    assert failed["photos"][0]["retouchedUrl"] is None


def test_fail_jobs_rate_one_fails_every_job(emu, api):
    emu.set_faults({"fail_jobs_rate": 1.0})
    job = api.job("any", api.profile()["id"])
    api.upload(job["id"], "a.png", make_image())
    api.ok("POST", f"jobs/{job['id']}/queue")
    assert api.wait_status(job["id"], "failed")["status"] == "failed"


def test_withheld_photo_never_gets_a_url_and_keeps_its_job_processing(emu, api):
    emu.set_faults({"withhold_photos": ["*_stuck.png"]})
    job = api.job("stuck", api.profile()["id"])
    api.upload(job["id"], "a.png", make_image())
    api.upload(job["id"], "b_stuck.png", make_image())
    api.ok("POST", f"jobs/{job['id']}/queue")
    # The other photo's URL only appears once the processing time is over.
    current = wait_until(lambda: (lambda j: j if j["photos"][0]["retouchedUrl"] else None)(
        api.ok("GET", f"jobs/{job['id']}")))
    assert current["status"] == "processing"
    assert current["photos"][1]["retouchedUrl"] is None and current["photos"][0]["retouchedUrl"]


def test_expire_downloads_next_and_retouched_ttl(emu, api):
    job = api.ready_job("dl", api.profile(), {"a.png": make_image()})
    url = job["photos"][0]["retouchedUrl"]
    emu.set_faults({"expire_downloads_next": 1})
    expired = requests.get(url, timeout=5)
    assert expired.status_code == 403 and "Request has expired" in expired.text
    assert requests.get(url, timeout=5).status_code == 200
    emu.set_faults({"retouched_url_seconds": 0})
    short = api.ok("GET", f"photos/{job['photos'][0]['id']}")["retouchedUrl"]
    wait_until(lambda: requests.get(short, timeout=5).status_code == 403, timeout=5)
    emu.clear_faults()
    fresh = api.ok("GET", f"jobs/{job['id']}")["photos"][0]["retouchedUrl"]
    assert requests.get(fresh, timeout=5).status_code == 200


def test_store_endpoint_keys_inject_errors_on_puts_and_gets(emu, api):
    job = api.ready_job("store-faults", api.profile(), {"a.png": make_image()})
    emu.set_faults({"errors": {"GET store": {"status": 503, "count": 1}}})
    url = job["photos"][0]["retouchedUrl"]
    assert [requests.get(url, timeout=5).status_code for _ in range(2)] == [503, 200]
    assert emu.calls()["GET store"] == 2


def test_admin_endpoints_set_clear_and_report(emu, api):
    base = emu.url + "/_emulator/"
    set_reply = requests.post(base + "faults", json={"errors": {"GET jobs": {"status": 500, "count": 1}}}, timeout=5)
    assert set_reply.json()["errors"]["GET jobs"]["count"] == 1
    assert api.call("GET", "jobs").status_code == 500
    assert requests.get(base + "calls", timeout=5).json()["GET jobs"] == 1
    requests.post(base + "faults", json={"latency": {"*": 0.01}}, timeout=5)
    assert requests.delete(base + "faults", timeout=5).json()["latency"] == {}
    bad = requests.post(base + "faults", json={"errors": {"GET jobs": {"status": 200}}, "bogus": 1}, timeout=5)
    assert bad.status_code == 422 and "bogus" in bad.json()["message"] and "status" in bad.json()["message"]
    api.profile()
    assert len(requests.get(base + "state", timeout=5).json()["profiles"]) == 1
    assert requests.post(base + "reset", timeout=5).status_code == 200
    assert requests.get(base + "state", timeout=5).json()["profiles"] == []
    assert requests.delete(base + "calls", timeout=5).status_code == 200 and emu.calls() == {}


def test_faults_given_to_the_constructor_apply_from_the_start():
    with Emulator(api_key="k", faults={"errors": {"GET profiles": {"status": 502, "count": 1}}}) as emu:
        assert Api(emu.url, "k").call("GET", "profiles").status_code == 502
    with pytest.raises(FaultError):
        Emulator(api_key="k", faults={"errors": {"GET profiles": {"status": 502, "rate": 2}}})
