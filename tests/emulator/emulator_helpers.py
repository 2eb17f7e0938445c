"""Helpers for the emulator tests: a raw `requests` API wrapper (deliberately
not our client), synthetic images and a poller. Imported by name from tests;
the module name is unique so it cannot clash with other test folders."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any, Callable

import pytest
import pyvips
import requests

KEY = "test-key"
PREFIX = "/api/public/v1/"
TAGGING = "job=photo&api=true"


def md5_b64(data: bytes) -> str:
    """Return the Content-MD5 value of `data`."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def put_headers(data: bytes, tagging: str | None = TAGGING) -> dict[str, str]:
    """Return the headers of a PUT of a job photo's bytes (tagging is signed into its URL)."""
    headers = {"Content-MD5": md5_b64(data)}
    if tagging is not None:
        headers["X-Amz-Tagging"] = tagging
    return headers


def make_image(width: int = 120, height: int = 90, fmt: str = ".png") -> bytes:
    """Return an encoded image: a red rectangle on a light grey background."""
    background = pyvips.Image.black(width, height).new_from_image([235, 235, 235])
    w, h = max(1, width // 2), max(1, height // 2)
    foreground = pyvips.Image.black(w, h).new_from_image([200, 30, 40])
    image = background.insert(foreground, width // 4, height // 4).cast("uchar").copy(interpretation="srgb")
    return image.write_to_buffer(fmt)


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `predicate` until it returns a truthy value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


class Api:
    """Raw HTTP calls against the emulator's API, with the test key."""

    def __init__(self, base_url: str, key: str = KEY) -> None:
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers["X-SLT-API-KEY"] = key

    def call(self, method: str, endpoint: str, **kwargs: Any) -> requests.Response:
        """Send a request to an API endpoint and return the raw response."""
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.base_url + PREFIX + endpoint, **kwargs)

    def ok(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        """Send a request, assert 200 and return the JSON answer."""
        response = self.call(method, endpoint, **kwargs)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def profile(self, **fields: Any) -> dict:
        fields.setdefault("name", "plain")
        return self.ok("POST", "profiles", json=fields)

    def job(self, name: str, profile_id: int) -> dict:
        return self.ok("POST", "jobs", json={"name": name, "profile_id": profile_id})

    def upload(self, job_id: int, name: str, data: bytes, key: str = "job_id") -> dict:
        """Create a photo, get its URL and PUT the bytes; return the photo record."""
        photo = self.ok("POST", "photos", json={key: job_id, "name": name, "use_cache_upload": False})
        url = self.ok("GET", "photos/upload_url", params={"photo_id": photo["id"], "content_md5": md5_b64(data)})["url"]
        put = requests.put(url, data=data, headers=put_headers(data), timeout=10)
        assert put.status_code == 200, put.text
        return photo

    def wait_status(self, job_id: int, status: str, timeout: float = 10.0) -> dict:
        """Poll a job until it has `status`; return it."""
        return wait_until(lambda: (lambda j: j if j["status"] == status else None)(
            self.ok("GET", f"jobs/{job_id}")), timeout)

    def ready_job(self, name: str, profile: dict, photos: dict[str, bytes]) -> dict:
        """Create a job with uploaded photos, queue it and wait for completion."""
        job = self.job(name, profile["id"])
        for photo_name, data in photos.items():
            self.upload(job["id"], photo_name, data)
        self.ok("POST", f"jobs/{job['id']}/queue")
        return self.wait_status(job["id"], "completed")
