"""Every Studio client call, against the emulator over loopback."""

from __future__ import annotations

import io
import logging

import pytest
import pyvips
from support import API_KEY, make_image, wait_for

from skylab_watch.studio import (
    AuthError, BadDigestError, InvalidRequestError, NotFoundError, OutOfCreditsError, RateLimitedError,
    RetryPolicy, ServerError, StudioClient, TransportError, UrlExpiredError, content_md5, send_photo_bytes,
    upload_photo_file,
)


@pytest.fixture
def client(emulator):
    policy = RetryPolicy(max_attempts=4, initial_seconds=0.01, max_backoff_seconds=0.05)
    with StudioClient(emulator.url, API_KEY, timeout=(2, 10), retry=policy) as c:
        yield c


@pytest.fixture
def profile(client):
    return client.create_profile("plain", output_file_type="jpg")


@pytest.fixture
def job(client, profile):
    return client.create_job("job-1", profile["id"])


def test_jobs_create_get_list_find_update(client, profile):
    job = client.create_job("shoot-a", profile["id"])
    assert job["name"] == "shoot-a" and job["type"] == "regular" and job["status"] == "pending"
    assert client.get_job(job["id"])["profile"]["id"] == profile["id"]
    assert [j["name"] for j in client.list_jobs()] == ["shoot-a"]
    assert client.find_job_by_name("shoot-a")["id"] == job["id"]
    assert client.find_job_by_name("nope") is None
    assert client.update_job(job["id"], name="shoot-b")["name"] == "shoot-b"


def test_duplicate_job_name_is_invalid(client, profile):
    client.create_job("same", profile["id"])
    with pytest.raises(InvalidRequestError) as err:
        client.create_job("same", profile["id"])
    assert err.value.status == 422 and err.value.message


def test_profiles_create_get_list_update(client):
    created = client.create_profile("cutouts", enable_extract=True, output_file_type="png")
    assert created["enableExtract"] is True and created["outputFileType"] == "png"
    assert client.get_profile(created["id"])["photos"] == []
    assert client.update_profile(created["id"], description="for the web")["description"] == "for the web"
    assert "cutouts" in [p["name"] for p in client.list_profiles()]


def test_photos_create_upload_get_list_delete(client, job, tmp_path):
    path = make_image(tmp_path / "IMG_0001.jpg")
    photo = upload_photo_file(client, path, job["id"])
    fetched = client.get_photo(photo["id"])
    assert fetched["name"] == "IMG_0001.jpg" and fetched["originalUrl"]
    assert [p["id"] for p in client.list_job_photos(job_id=job["id"])] == [photo["id"]]
    assert [p["id"] for p in client.list_job_photos(job_name="job-1")] == [photo["id"]]
    assert client.job_photo_ids(job["id"]) == [photo["id"]]
    stored = io.BytesIO()
    client.download(fetched["originalUrl"], stored)
    assert stored.getvalue() == path.read_bytes()
    client.delete_photo(photo["id"])
    with pytest.raises(NotFoundError):
        client.get_photo(photo["id"])


def test_regular_job_upload_carries_the_tagging_header(client, job, emulator, tmp_path):
    photo = upload_photo_file(client, make_image(tmp_path / "a.jpg"), job["id"])
    state = emulator.state()
    record = next(p for p in state["photos"] if p["id"] == photo["id"])
    assert record["tagging"] == "job=photo&api=true"


def test_queue_process_and_jobs_in_front(client, job, tmp_path):
    upload_photo_file(client, make_image(tmp_path / "a.jpg"), job["id"])
    assert client.queue_job(job["id"])["status"] in ("queued", "processing")
    assert client.jobs_in_front(job["id"]) == 0
    done = wait_for(lambda: (j := client.get_job(job["id"]))["status"] == "completed" and j, what="completed")
    assert done["photos"][0]["retouchedUrl"].startswith("http")


def test_cancel_and_delete_job(client, profile):
    job = client.create_job("to-cancel", profile["id"])
    assert client.cancel_job(job["id"])["status"] == "cancelled"
    client.delete_job(job["id"])
    with pytest.raises(NotFoundError):
        client.get_job(job["id"])


def test_wrong_key_is_an_auth_error(emulator):
    with StudioClient(emulator.url, "wrong-key") as bad:
        with pytest.raises(AuthError) as err:
            bad.list_jobs()
    assert err.value.status == 403


def test_unknown_job_is_not_found(client):
    with pytest.raises(NotFoundError):
        client.get_job(999999)


def test_bad_extension_is_invalid(client, job):
    with pytest.raises(InvalidRequestError):
        client.create_photo("scan.tif", job_id=job["id"])


def test_out_of_credits_is_its_own_error_and_not_retried(client, emulator, profile):
    emulator.set_out_of_credits(True)
    before = emulator.calls().get("POST jobs", 0)
    with pytest.raises(OutOfCreditsError) as err:
        client.create_job("x", profile["id"])
    assert err.value.status == 402
    assert emulator.calls().get("POST jobs", 0) == before + 1
    emulator.set_out_of_credits(False)
    assert client.create_job("x", profile["id"])["name"] == "x"


def test_429_with_retry_after_is_retried_after_that_wait(emulator, profile):
    slept = []
    policy = RetryPolicy(max_attempts=4, initial_seconds=0.01, max_backoff_seconds=5, sleep=slept.append)
    emulator.set_faults({"errors": {"GET jobs": {"status": 429, "count": 2, "retry_after": 2}}})
    with StudioClient(emulator.url, API_KEY, retry=policy) as c:
        assert c.list_jobs() == []
    assert slept == [2.0, 2.0]


def test_429_that_persists_raises_rate_limited_with_its_retry_after(client, emulator):
    emulator.set_faults({"errors": {"GET jobs": {"status": 429, "retry_after": 1}}})
    with pytest.raises(RateLimitedError) as err:
        client.list_jobs()
    assert err.value.retry_after == 1.0


def test_server_errors_are_retried_then_raised(client, emulator):
    emulator.set_faults({"errors": {"GET profiles": {"status": 503, "count": 2}}})
    assert client.list_profiles() == []
    emulator.set_faults({"errors": {"GET profiles": {"status": 500}}})
    with pytest.raises(ServerError):
        client.list_profiles()
    assert emulator.calls()["GET profiles"] == 3 + 4


def test_put_that_fails_twice_then_succeeds(client, job, emulator, tmp_path):
    path = make_image(tmp_path / "a.jpg")
    emulator.set_faults({"put_fail_next": 2, "put_fail_status": 500})
    photo = upload_photo_file(client, path, job["id"])
    assert client.get_photo(photo["id"])["originalUrl"]
    assert emulator.calls()["PUT store"] == 3


def test_md5_mismatch_is_bad_digest(client, job, tmp_path):
    data = make_image(tmp_path / "a.jpg").read_bytes()
    photo = client.create_photo("a.jpg", job_id=job["id"])
    url = client.upload_url(photo["id"], content_md5(data))
    with pytest.raises(BadDigestError) as err:
        client.put_bytes(url, data + b"tail", content_md5(data))
    assert err.value.status == 400 and err.value.code == "BadDigest"


def test_failed_upload_deletes_the_empty_record(client, job, emulator, tmp_path):
    emulator.set_faults({"put_corrupt_next": 10})
    with pytest.raises(BadDigestError):
        upload_photo_file(client, make_image(tmp_path / "a.jpg"), job["id"])
    assert client.list_job_photos(job_id=job["id"]) == []


def test_expired_upload_url_is_refused_and_a_fresh_one_used(emulator, tmp_path):
    with type(emulator)(api_key=API_KEY, processing_seconds=0.3, upload_url_seconds=0.2) as short:
        with StudioClient(short.url, API_KEY, retry=RetryPolicy(max_attempts=1)) as c:
            profile = c.create_profile("p")
            job = c.create_job("j", profile["id"])
            data = make_image(tmp_path / "a.jpg").read_bytes()
            photo = c.create_photo("a.jpg", job_id=job["id"])
            url = c.upload_url(photo["id"], content_md5(data))
            wait_for(lambda: _put_refused(c, url, data), what="URL expiry")
            with pytest.raises(UrlExpiredError):
                c.put_bytes(url, data, content_md5(data))


def _put_refused(client, url, data) -> bool:
    try:
        client.put_bytes(url, data, content_md5(data))
    except UrlExpiredError:
        return True
    return False


def test_send_photo_bytes_refreshes_an_expired_url(tmp_path):
    from skylab_watch.emulator import Emulator
    with Emulator(api_key=API_KEY, processing_seconds=0.3, upload_url_seconds=0.0) as emu:
        with StudioClient(emu.url, API_KEY, retry=RetryPolicy(max_attempts=1)) as c:
            job = c.create_job("j", c.create_profile("p")["id"])
            photo = c.create_photo("a.jpg", job_id=job["id"])
            data = make_image(tmp_path / "a.jpg").read_bytes()
            with pytest.raises(UrlExpiredError):
                send_photo_bytes(c, photo["id"], data, url_refreshes=2)
            assert emu.calls()["GET photos/upload_url"] == 3


def test_tampered_url_signature_is_refused(client, job, tmp_path):
    data = make_image(tmp_path / "a.jpg").read_bytes()
    photo = client.create_photo("a.jpg", job_id=job["id"])
    url = client.upload_url(photo["id"], content_md5(data))
    tampered = url[:-2] + ("00" if not url.endswith("00") else "11")
    with pytest.raises(UrlExpiredError) as err:
        client.put_bytes(tampered, data, content_md5(data))
    assert err.value.status == 403


def test_connection_refused_is_a_transport_error_that_never_left(tmp_path):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with StudioClient(f"http://127.0.0.1:{port}", API_KEY, retry=RetryPolicy(max_attempts=1)) as c:
        with pytest.raises(TransportError) as err:
            c.list_jobs()
    assert err.value.sent is False and err.value.status is None


def test_extract_output_really_carries_alpha(client, tmp_path):
    profile = client.create_profile("cut", enable_extract=True, output_file_type="png")
    job = client.create_job("cut-job", profile["id"])
    upload_photo_file(client, make_image(tmp_path / "a.jpg"), job["id"])
    client.queue_job(job["id"])
    done = wait_for(lambda: (j := client.get_job(job["id"]))["status"] == "completed" and j)
    out = io.BytesIO()
    client.download(done["photos"][0]["retouchedUrl"], out)
    image = pyvips.Image.new_from_buffer(out.getvalue(), "")
    assert image.bands == 4 and image.hasalpha()
    alpha = image[3]
    assert alpha.min() == 0 and alpha.max() == 255


def test_debug_log_never_shows_the_api_key(client, caplog):
    with caplog.at_level(logging.DEBUG, logger="skylab_watch.studio"):
        client.list_jobs()
    assert caplog.records, "debug logging should describe the request"
    assert API_KEY not in caplog.text
    assert "[redacted]" in caplog.text


def test_client_identifies_itself(client, emulator):
    from skylab_watch import __version__
    from skylab_watch.studio.client import CLIENT_HEADER
    assert CLIENT_HEADER == f"skylab-watch-{__version__}"
    assert client._headers()["X-SLT-API-CLIENT"] == CLIENT_HEADER


def test_a_download_that_breaks_off_is_retried_from_the_start():
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    payload = bytes(range(256)) * 400
    served = []

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            served.append(1)
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload if len(served) > 1 else payload[:1000])
            self.close_connection = True

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        policy = RetryPolicy(max_attempts=3, initial_seconds=0.01)
        with StudioClient(f"http://127.0.0.1:{server.server_address[1]}", API_KEY, retry=policy) as c:
            sink = io.BytesIO()
            assert c.download(f"http://127.0.0.1:{server.server_address[1]}/obj", sink) == len(payload)
    finally:
        server.shutdown()
        server.server_close()
    assert sink.getvalue() == payload and len(served) == 2
