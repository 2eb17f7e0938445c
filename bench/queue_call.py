"""The emulator's queue call: 200 uploaded 3000x2000 photos queued in one call.

Measured in-process on the emulator's core (`Studio.handle`, no sockets, no
added latency): the PUTs (time under the state lock included) and the one
queue call, which reads the sizes recorded at PUT and decodes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bench.common import KEY, cached_photos
from skylab_watch.emulator import Studio
from skylab_watch.emulator.protocol import Request


def _call(studio: Studio, method: str, endpoint: str, payload: dict | None = None,
          query: dict[str, str] | None = None) -> Any:
    body = json.dumps(payload).encode() if payload is not None else b""
    request = Request(method, "/api/public/v1/" + endpoint, query or {}, {"x-slt-api-key": KEY}, body)
    response = studio.handle(request)
    assert response.status == 200, response.body
    return json.loads(response.body)


def _put(studio: Studio, url: str, data: bytes) -> None:
    split = urlsplit(url)
    headers = {"content-md5": base64.b64encode(hashlib.md5(data).digest()).decode(),
               "x-amz-tagging": "job=photo&api=true"}
    response = studio.handle(Request("PUT", split.path, dict(parse_qsl(split.query)), headers, data))
    assert response.status == 200, response.body


def run(quick: bool, count: int | None = None) -> dict[str, float]:
    """Upload `count` photos into one job of an in-process emulator core, queue it; print and return times."""
    count = count or (20 if quick else 200)
    photos = cached_photos(count, *((600, 400) if quick else (3000, 2000)))
    studio = Studio(api_key=KEY, processing_seconds=600)
    studio.base_url = "http://127.0.0.1:1"
    profile = _call(studio, "POST", "profiles", {"name": "queue"})
    job = _call(studio, "POST", "jobs", {"name": "queue", "profile_id": profile["id"]})
    put_seconds = 0.0
    for path in photos:
        data = path.read_bytes()
        photo = _call(studio, "POST", "photos", {"job_id": job["id"], "name": path.name})
        url = _call(studio, "GET", "photos/upload_url", query={"photo_id": str(photo["id"])})
        started = time.perf_counter()
        _put(studio, url["url"], data)
        put_seconds += time.perf_counter() - started
    started = time.perf_counter()
    _call(studio, "POST", f"jobs/{job['id']}/queue")
    queue_seconds = time.perf_counter() - started
    print(f"queue: {count} photos; PUT {put_seconds / count * 1000:.1f} ms each (store side); "
          f"one queue call {queue_seconds * 1000:.0f} ms", flush=True)
    return {"photos": count, "put_ms": put_seconds / count * 1000, "queue_ms": queue_seconds * 1000}
