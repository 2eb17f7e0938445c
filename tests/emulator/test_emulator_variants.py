"""Personalities: each variant bends exactly the answers it names, and the
default stays the documented contract."""

from __future__ import annotations

import pytest
import pyvips
import requests
from emulator_helpers import Api, make_image, md5_b64

from skylab_watch.emulator import VARIANTS, Emulator


@pytest.fixture
def variant_emu(request):
    """An emulator started with the variants given by indirect parametrisation."""
    with Emulator(api_key="k", processing_seconds=0.3, variants=request.param) as emulator:
        yield emulator, Api(emulator.url, "k")


def _pending_photo(api: Api, name: str = "v") -> tuple[dict, dict]:
    job = api.job(name, api.profile(name=f"p-{name}")["id"])
    photo = api.ok("POST", "photos", json={"job_id": job["id"], "name": "a.jpg"})
    return job, photo


def test_variant_names_are_exported_as_a_tuple_of_str():
    assert isinstance(VARIANTS, tuple) and len(VARIANTS) == 10 and all(isinstance(v, str) for v in VARIANTS)


def test_unknown_variant_is_refused_at_construction():
    with pytest.raises(ValueError, match="no-such"):
        Emulator(api_key="k", variants=["no-such"])


@pytest.mark.parametrize("variant_emu", [["slim-job-photos"]], indirect=True)
def test_slim_job_photos_drops_urls_from_embedded_photos_only(variant_emu):
    _, api = variant_emu
    job = api.ready_job("slim", api.profile(), {"a.jpg": make_image(fmt=".jpg")})
    embedded = job["photos"][0]
    assert "retouchedUrl" not in embedded and "originalUrl" not in embedded
    assert all("retouchedUrl" not in p for j in api.ok("GET", "jobs") for p in j["photos"])
    full = api.ok("GET", f"photos/{embedded['id']}")
    assert full["retouchedUrl"].startswith("http") and full["originalUrl"].startswith("http")


@pytest.mark.parametrize("variant_emu", [["job-without-photos"]], indirect=True)
def test_job_without_photos_answers_jobs_with_no_photos_key(variant_emu):
    _, api = variant_emu
    job = api.ready_job("bare", api.profile(), {"a.jpg": make_image(fmt=".jpg")})
    assert "photos" not in job and "photos" not in api.ok("GET", "jobs")[0]
    assert api.ok("GET", f"jobs/{job['id']}/photo_ids") != []
    assert api.ok("GET", "photos/list_for_job", params={"job_id": job["id"]})[0]["retouchedUrl"]


@pytest.mark.parametrize("variant_emu", [["placeholder-retouched-url"]], indirect=True)
def test_placeholder_retouched_url_is_a_word_until_the_photo_is_ready(variant_emu):
    emu, api = variant_emu
    job, photo = _pending_photo(api)
    assert photo["retouchedUrl"] == "pending"
    data = make_image()
    url = api.ok("GET", "photos/upload_url", params={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"]
    requests.put(url, data=data, headers={"Content-MD5": md5_b64(data), "X-Amz-Tagging": "job=photo&api=true"},
                 timeout=5)
    emu.processing_seconds = 30
    api.ok("POST", f"jobs/{job['id']}/queue")
    assert api.ok("GET", f"photos/{photo['id']}")["retouchedUrl"] == "processing"
    assert api.ok("GET", f"jobs/{job['id']}")["photos"][0]["retouchedUrl"] == "processing"
    emu.processing_seconds = 0.01
    done = api.wait_status(job["id"], "completed")
    assert done["photos"][0]["retouchedUrl"].startswith("http")


@pytest.mark.parametrize("variant_emu", [["original-url-at-create"]], indirect=True)
def test_original_url_at_create_is_set_before_any_bytes(variant_emu):
    _, api = variant_emu
    job, photo = _pending_photo(api)
    assert photo["originalUrl"].startswith("http")
    assert api.ok("GET", f"jobs/{job['id']}")["photos"][0]["originalUrl"].startswith("http")
    assert requests.get(photo["originalUrl"], timeout=5).status_code == 404
    assert api.call("POST", f"jobs/{job['id']}/queue").status_code == 422  # still no bytes


@pytest.mark.parametrize("variant_emu", [["other-status-words"]], indirect=True)
def test_other_status_words_rename_job_statuses_and_refuse_a_second_queue(variant_emu):
    emu, api = variant_emu
    emu.processing_seconds = 0.6
    job = api.job("words", api.profile()["id"])
    assert job["status"] == "new"
    api.upload(job["id"], "a.jpg", make_image(fmt=".jpg"))
    assert api.ok("POST", f"jobs/{job['id']}/queue")["status"] == "waiting"
    again = api.call("POST", f"jobs/{job['id']}/queue")
    assert again.status_code == 422 and again.json()["message"] == "job already queued"
    api.wait_status(job["id"], "in_progress")
    api.wait_status(job["id"], "completed")
    emu.set_faults({"fail_jobs": ["broken"]})
    broken = api.job("broken", api.profile(name="p2")["id"])
    api.upload(broken["id"], "a.jpg", make_image(fmt=".jpg"))
    api.ok("POST", f"jobs/{broken['id']}/queue")
    assert api.wait_status(broken["id"], "error")["status"] == "error"


@pytest.mark.parametrize("variant_emu, status, message", [
    (["credits-as-422"], 422, "Insufficient credits to process this job"),
    (["credits-as-403"], 403, "Payment required: your credit balance is empty"),
], indirect=["variant_emu"])
def test_out_of_credits_takes_the_variants_status_and_message(variant_emu, status, message):
    emu, api = variant_emu
    profile = api.profile()
    emu.set_out_of_credits(True)
    refused = api.call("POST", "jobs", json={"name": "j", "profile_id": profile["id"]})
    assert (refused.status_code, refused.json()) == (status, {"message": message})
    emu.set_out_of_credits(False)
    assert api.call("POST", "jobs", json={"name": "j", "profile_id": profile["id"]}).status_code == 200


@pytest.mark.parametrize("variant_emu", [["webp-results"]], indirect=True)
def test_webp_results_deliver_rgba_webp_for_extract_profiles_only(variant_emu):
    _, api = variant_emu
    cut = api.ready_job("cut", api.profile(name="cut", enable_extract=True), {"a.jpg": make_image(fmt=".jpg")})
    plain = api.ready_job("plain", api.profile(name="plain"), {"a.jpg": make_image(fmt=".jpg")})
    cut_image = pyvips.Image.new_from_buffer(requests.get(cut["photos"][0]["retouchedUrl"], timeout=10).content, "")
    plain_answer = requests.get(plain["photos"][0]["retouchedUrl"], timeout=10)
    assert cut_image.get("vips-loader").startswith("webp") and cut_image.bands == 4
    assert plain_answer.headers["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("variant_emu, shape", [
    ([], {"jobsInFront": 0}),
    (["jobs-in-front-object"], {"data": {"jobs_in_front": 0}}),
    (["jobs-in-front-string"], "0"),
], indirect=["variant_emu"])
def test_jobs_in_front_answer_takes_the_variants_shape(variant_emu, shape):
    _, api = variant_emu
    job = api.job("front", api.profile()["id"])
    assert api.ok("GET", f"jobs/{job['id']}/jobs_in_front") == shape


@pytest.mark.parametrize("variant_emu", [[]], indirect=True)
def test_default_is_the_documented_contract(variant_emu):
    _, api = variant_emu
    job, photo = _pending_photo(api)
    assert job["status"] == "pending" and photo["retouchedUrl"] is None and photo["originalUrl"] is None
    shown = api.ok("GET", f"jobs/{job['id']}")
    assert shown["photos"][0]["retouchedUrl"] is None and "originalUrl" in shown["photos"][0]


def test_fault_document_switches_variants_at_run_time_and_clearing_restores_the_start_ones():
    with Emulator(api_key="k", variants=["jobs-in-front-string"]) as emu:
        api = Api(emu.url, "k")
        job = api.job("switch", api.profile()["id"])
        front = f"jobs/{job['id']}/jobs_in_front"
        assert api.ok("GET", front) == "0"
        reply = requests.post(emu.url + "/_emulator/faults", json={"variants": ["jobs-in-front-object"]}, timeout=5)
        assert reply.status_code == 200 and api.ok("GET", front) == {"data": {"jobs_in_front": 0}}
        assert emu.state()["variants"] == ["jobs-in-front-object"]
        bad = requests.post(emu.url + "/_emulator/faults", json={"variants": ["nope"]}, timeout=5)
        assert bad.status_code == 422 and "nope" in bad.json()["message"]
        emu.clear_faults()
        assert api.ok("GET", front) == "0"


def test_personality_folds_each_active_row_over_the_default_value():
    from skylab_watch.emulator.variants import Personality, PhotoFacts

    facts = PhotoFacts(embedded=True, job_photo=True, queued=False, sign_original=lambda: "http://signed")
    doc = {"id": 1, "retouchedUrl": None, "originalUrl": None}
    both = Personality(["placeholder-retouched-url", "original-url-at-create"])
    assert both.apply("photo", doc, facts) == {"id": 1, "retouchedUrl": "pending", "originalUrl": "http://signed"}
    assert Personality(["slim-job-photos"]).apply("photo", doc, facts) == {"id": 1}
    assert Personality().apply("photo", doc, facts) is doc
    assert Personality(["credits-as-422", "credits-as-403"]).apply("credits", (402, "x"))[0] == 403
