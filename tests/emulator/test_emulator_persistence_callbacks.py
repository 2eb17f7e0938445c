"""State that survives a restart, and signed completion callbacks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from emulator_helpers import Api, make_image, md5_b64, put_headers, wait_until

from skylab_watch.emulator import Emulator, sign_callback


def test_state_and_bytes_survive_a_restart_with_a_data_dir(tmp_path):
    data = make_image()
    with Emulator(api_key="k", data_dir=tmp_path, processing_seconds=0.3) as emu:
        api = Api(emu.url, "k")
        profile = api.profile()
        job = api.job("persist", profile["id"])
        photo = api.upload(job["id"], "a.png", data)
        api.ok("POST", f"jobs/{job['id']}/queue")
    with Emulator(api_key="k", data_dir=tmp_path, processing_seconds=0.3) as emu:
        api = Api(emu.url, "k")
        done = api.wait_status(job["id"], "completed")
        assert done["name"] == "persist" and done["photos"][0]["id"] == photo["id"]
        original = api.ok("GET", f"photos/{photo['id']}")["originalUrl"]
        assert requests.get(original, timeout=5).content == data
        assert requests.get(done["photos"][0]["retouchedUrl"], timeout=5).status_code == 200
        newer = api.job("after-restart", profile["id"])
        assert newer["id"] > job["id"]
    assert (tmp_path / "state.json").exists()
    assert not list(tmp_path.glob(".state-*"))


class _Receiver:
    """A tiny HTTP server recording callback PATCHes; answers `statuses` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.received: list[dict] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_PATCH(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.received.append({"headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _queue_with_callback(api: Api, name: str, url: str) -> dict:
    job = api.job(name, api.profile()["id"])
    api.upload(job["id"], "a.png", make_image())
    return api.ok("POST", f"jobs/{job['id']}/queue", json={"callback_url": url})


def test_completion_callback_is_a_signed_patch_of_the_job_json():
    receiver = _Receiver()
    try:
        with Emulator(api_key="k", callback_secret="s3cret", processing_seconds=0.3) as emu:
            job = _queue_with_callback(Api(emu.url, "k"), "hooked", receiver.url)
            wait_until(lambda: receiver.received)
    finally:
        receiver.close()
    call = receiver.received[0]
    timestamp, signature = call["headers"]["X-Skylab-Timestamp"], call["headers"]["X-Skylab-Signature"]
    assert signature == sign_callback("s3cret", timestamp, call["body"])
    sent = json.loads(call["body"])
    assert sent["id"] == job["id"] and sent["status"] == "completed"
    assert sent["photos"][0]["retouchedUrl"]
    assert len(receiver.received) == 1


def test_failed_callback_delivery_is_retried():
    receiver = _Receiver(statuses=[500, 503])
    try:
        with Emulator(api_key="k", processing_seconds=0.3) as emu:
            _queue_with_callback(Api(emu.url, "k"), "retried", receiver.url)
            wait_until(lambda: len(receiver.received) >= 3)
            log = wait_until(lambda: [d for d in emu.state()["callbacks"] if d["delivered"]])
    finally:
        receiver.close()
    assert log[0]["attempts"] == 3
    assert "X-Skylab-Signature" not in receiver.received[0]["headers"]


def test_cancelled_job_with_callback_is_reported_cancelled():
    receiver = _Receiver()
    try:
        with Emulator(api_key="k", processing_seconds=30) as emu:
            api = Api(emu.url, "k")
            job = _queue_with_callback(api, "cancel-me", receiver.url)
            api.ok("POST", f"jobs/{job['id']}/cancel")
            wait_until(lambda: receiver.received)
    finally:
        receiver.close()
    assert json.loads(receiver.received[0]["body"])["status"] == "cancelled"


def test_restart_on_the_same_port_serves_pooled_clients_from_the_new_instance(tmp_path):
    with Emulator(api_key="k", data_dir=tmp_path) as first:
        port = first.port
        api = Api(first.url, "k")
        api.profile(name="before")
    with Emulator(api_key="k", data_dir=tmp_path, port=port):
        api.profile(name="after")
        names = [p["name"] for p in api.ok("GET", "profiles")]
    assert names == ["before", "after"]


def test_restart_on_the_same_port_keeps_processing_jobs_urls_and_credits(tmp_path):
    data = make_image()
    with Emulator(api_key="k", data_dir=tmp_path, processing_seconds=1.0) as first:
        port, api = first.port, Api(first.url, "k")
        profile = api.profile()
        done = api.ready_job("done-before", profile, {"a.png": data})
        running = api.job("running", profile["id"])
        api.upload(running["id"], "b.png", data)
        api.ok("POST", f"jobs/{running['id']}/queue")
        waiting = api.job("waiting", profile["id"])
        photo = api.ok("POST", "photos", json={"job_id": waiting["id"], "name": "c.png"})
        upload_url = api.ok("GET", "photos/upload_url", params={"photo_id": photo["id"],
                                                                "content_md5": md5_b64(data)})["url"]
        first.set_out_of_credits(True)
    with Emulator(api_key="k", data_dir=tmp_path, processing_seconds=1.0, port=port) as second:
        assert second.url == f"http://127.0.0.1:{port}"
        assert requests.put(upload_url, data=data, headers=put_headers(data), timeout=5).status_code == 200
        assert requests.get(done["photos"][0]["retouchedUrl"], timeout=5).status_code == 200
        assert api.ok("GET", f"jobs/{running['id']}")["status"] in ("queued", "processing", "completed")
        assert api.wait_status(running["id"], "completed")["photos"][0]["retouchedUrl"]
        assert second.state()["out_of_credits"] is True


def test_a_stopped_instance_never_writes_the_state_of_its_successor(tmp_path):
    first = Emulator(api_key="k", data_dir=tmp_path).start()
    Api(first.url, "k").profile(name="kept")
    first.stop()
    with Emulator(api_key="k", data_dir=tmp_path) as second:
        Api(second.url, "k").profile(name="newer")
        first.studio.state.save()  # a late request of the old instance finishing now
        first.studio.set_out_of_credits(True)
    with Emulator(api_key="k", data_dir=tmp_path) as third:
        state = third.state()
    assert [p["name"] for p in state["profiles"]] == ["kept", "newer"] and state["out_of_credits"] is False
