"""The emulated Studio without threads or sockets: `Studio.handle(request) -> response`.

It owns the account state, the object store, the URL signer, faults,
variants and the rendered outputs. Whoever serves it over HTTP (the
`Emulator`, through `server.py`) only ever calls `handle`, and calls
`advance` on a timer so that completion callbacks leave without a request;
finished jobs are handed to `on_job_finished(job_id, callback_url, body)`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, TypeVar

from skylab_watch.emulator import processing
from skylab_watch.emulator.faults import Faults, validate
from skylab_watch.emulator.progress import advance_jobs
from skylab_watch.emulator.protocol import ApiError, Request, Response, message_response, s3_error
from skylab_watch.emulator.routes import API_PREFIX, serve_api
from skylab_watch.emulator.state import AccountState, Job, Photo, Profile
from skylab_watch.emulator.store import ObjectStore, UrlSigner, original_key
from skylab_watch.emulator.store_api import STORE_PREFIX, serve_store
from skylab_watch.emulator.variants import Personality, unknown_variants
from skylab_watch.emulator.views import render_admin_job, render_admin_photo, render_job, render_profile

FOURTEEN_DAYS = 14 * 24 * 3600.0
CACHE_LIMIT = 64
REGULAR_JOB_TAGGING = "job=photo&api=true"
FinishedHook = Callable[[int, str, str], None]

R = TypeVar("R")


def missing_length(store: bool) -> Response:
    """Answer a chunked body: refused (411) as S3 does, never read as empty."""
    if store:
        return s3_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    return message_response(411, "a request body needs a Content-Length header (no chunked bodies)")


class Studio:
    """One emulated Studio account; every method is thread-safe."""

    def __init__(self, api_key: str, processing_seconds: float = 2.0, data_dir: str | Path | None = None,
                 upload_url_seconds: float = 900.0, download_url_seconds: float = FOURTEEN_DAYS,
                 variants: tuple[str, ...] | list[str] = ()) -> None:
        if not api_key:
            raise ValueError("the emulator needs a non-empty api_key")
        problems = unknown_variants(list(variants))
        if problems:
            raise ValueError("variants: " + "; ".join(problems))
        self.api_key = api_key
        self.processing_seconds = float(processing_seconds)
        self.upload_url_seconds = float(upload_url_seconds)
        self.download_url_seconds = float(download_url_seconds)
        self.base_variants = tuple(variants)
        self.base_url = "http://127.0.0.1"
        self.on_job_finished: FinishedHook = lambda job_id, url, body: None
        self.state = AccountState(Path(data_dir) if data_dir is not None else None)
        self.objects = ObjectStore(self.state.data_dir)
        self.signer = UrlSigner(self.state.signing_key)
        self.faults = Faults()
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._cache: dict[tuple[str, processing.OutputSpec], tuple[bytes, str]] = {}
        self._cache_lock = threading.Lock()

    # ---- the seam ----------------------------------------------------------

    def handle(self, req: Request) -> Response:
        """Answer one request to the API (`/api/public/v1/`) or the store (`/_store/`)."""
        if self.state.closed:
            return message_response(503, "the emulator is stopping")
        if req.body_unread and req.declared_length < 0:
            return missing_length(req.path.startswith(STORE_PREFIX))
        if req.body_unread and not req.path.startswith(STORE_PREFIX):
            return message_response(413, "the request body is too large")
        if req.path.startswith(STORE_PREFIX):
            return serve_store(self, req)
        if req.path.startswith(API_PREFIX):
            return serve_api(self, req)
        return message_response(404, f"no endpoint {req.method} {req.path}")

    def open(self) -> None:
        """Serve requests (again, after `close`)."""
        with self.state.lock:
            self.state.closed = False

    def close(self) -> None:
        """Refuse every later request and never write the state again.

        Taking the state lock waits for a mutation in progress to be saved.
        """
        with self.state.lock:
            self.state.closed = True

    # ---- lookups used by the endpoints (caller holds the state lock) -------

    @property
    def personality(self) -> Personality:
        """The active variants: the fault document's if it names any, else those given at start."""
        chosen = self.faults.variants()
        return Personality(self.base_variants if chosen is None else chosen)

    def job(self, job_id: int) -> Job:
        """Return a job; 404 if there is none."""
        return _found(self.state.jobs, job_id, "job")

    def photo(self, photo_id: int) -> Photo:
        """Return a photo; 404 if there is none."""
        return _found(self.state.photos, photo_id, "photo")

    def profile(self, profile_id: int) -> Profile:
        """Return a profile; 404 if there is none."""
        return _found(self.state.profiles, profile_id, "profile")

    # ---- time, calls, URLs -------------------------------------------------

    def count_call(self, key: str) -> None:
        """Record one call to an endpoint key."""
        with self._calls_lock:
            self._calls[key] += 1

    def advance(self) -> None:
        """Settle job statuses from the clock and hand over the callbacks that became due."""
        with self.state.lock:
            if self.state.closed:
                return
            due = advance_jobs(self.state, time.time(), self.processing_seconds)
            bodies = [(job_id, str(self.state.jobs[job_id].callback_url),
                       json.dumps(render_job(self, self.state.jobs[job_id]))) for job_id in due]
        for job_id, url, body in bodies:
            self.on_job_finished(job_id, url, body)

    def upload_url(self, photo: Photo, md5: str | None) -> str:
        """Return a presigned PUT URL for a photo's bytes; tagging is signed for job photos."""
        tagging = REGULAR_JOB_TAGGING if photo.job_id is not None else None
        return self.signer.sign(self.base_url, "PUT", f"/_store/originals/{photo.id}",
                                self.upload_url_seconds, md5, tagging)

    def original_url(self, photo: Photo) -> str:
        """Return a GET URL for a photo's original: presigned, or the URL it was given at start."""
        if photo.source_url:
            return photo.source_url
        return self.signer.sign(self.base_url, "GET", f"/_store/originals/{photo.id}", self.download_url_seconds)

    def retouched_url(self, photo: Photo) -> str:
        """Return a presigned GET URL for a photo's output (TTL settable by fault)."""
        ttl = self.faults.retouched_url_seconds(self.download_url_seconds)
        return self.signer.sign(self.base_url, "GET", f"/_store/retouched/{photo.id}", ttl)

    # ---- bytes ---------------------------------------------------------------

    def store_original(self, photo_id: int, data: bytes, tagging: str | None, md5: str | None = None) -> bool:
        """Keep a photo's uploaded bytes; False if the photo no longer exists.

        The image header is read and the bytes hashed (unless the caller
        already did: `md5` as hex) here, before taking the lock, so that
        queueing a job of many photos decodes nothing and concurrent PUTs do
        not wait on each other's hashing.
        """
        md5 = md5 or hashlib.md5(data).hexdigest()
        width: int | None
        height: int | None
        try:
            width, height = processing.image_size(data)
            problem = None
        except processing.ImageError as exc:
            width = height = None
            problem = str(exc)
        with self.state.lock:
            photo = self.state.photos.get(photo_id)
            if photo is None or self.state.closed:
                return False
            self.objects.put(original_key(photo_id), data)
            photo.md5, photo.size = md5, len(data)
            photo.tagging, photo.uploaded_at = tagging, time.time()
            photo.width, photo.height, photo.image_problem = width, height, problem
            self.state.save()
            return True

    def forget_photo(self, photo_id: int) -> None:
        """Delete a photo record and its bytes (caller holds the state lock)."""
        self.state.photos.pop(photo_id, None)
        self.objects.delete(original_key(photo_id))

    def output_spec(self, profile: Profile) -> processing.OutputSpec:
        """Return what a profile's outputs are, with the active variants applied."""
        if profile.enable_extract:
            file_type = "webp" if profile.output_file_type == "webp" else "png"
            file_type = self.personality.apply("extract_type", file_type)
        else:
            file_type = profile.output_file_type
        return processing.OutputSpec(extract=profile.enable_extract, file_type=file_type,
                                     crop=profile.enable_crop, strip_metadata=profile.enable_strip_png_metadata)

    def retouched_bytes(self, photo_id: int) -> tuple[bytes, str] | None:
        """Return (bytes, content type) of a photo's output, or None if it has none."""
        with self.state.lock:
            photo = self.state.photos.get(photo_id)
            job = self.state.jobs.get(photo.job_id) if photo and photo.job_id else None
            profile = self.state.profiles.get(job.profile_id) if job else None
            if photo is None or not photo.retouched or profile is None or photo.md5 is None:
                return None
            key = (photo.md5, self.output_spec(profile))
        return self._render(key, photo_id)

    def _render(self, key: tuple[str, processing.OutputSpec], photo_id: int) -> tuple[bytes, str] | None:
        """Render (or fetch from the cache) an output; the same input gives the same bytes."""
        with self._cache_lock:
            if key in self._cache:
                return self._cache[key]
        original = self.objects.get(original_key(photo_id))
        if original is None:
            return None
        try:
            result = processing.render_output(original, key[1])
        except processing.ImageError:
            return None
        with self._cache_lock:
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = result
        return result

    # ---- admin ---------------------------------------------------------------

    def set_faults(self, faults: dict[str, Any], replace: bool = False) -> dict[str, Any]:
        """Merge (or with `replace`, set) fault settings; return the current ones.

        Raise faults.FaultError naming every bad key. `out_of_credits` sets the
        credits flag rather than being stored as a fault.
        """
        validate(faults)
        doc = dict(faults)
        if "out_of_credits" in doc:
            self.set_out_of_credits(bool(doc.pop("out_of_credits")))
        if replace:
            self.faults.clear()
        self.faults.merge(doc)
        return self.faults.to_dict()

    def set_out_of_credits(self, out: bool) -> None:
        """Set the out-of-credits flag; False adds credits back."""
        with self.state.lock:
            self.state.out_of_credits = out
            self.state.save()

    def calls(self) -> dict[str, int]:
        """Return call counts per endpoint key ("POST jobs", "PUT store", ...)."""
        with self._calls_lock:
            return dict(self._calls)

    def reset_calls(self) -> None:
        """Zero every call count."""
        with self._calls_lock:
            self._calls.clear()

    def snapshot(self) -> dict[str, Any]:
        """Return everything the account holds, for tests and the admin endpoint."""
        self.advance()
        with self.state.lock:
            model = self.state
            return {
                "jobs": [render_admin_job(self, j) for j in sorted(model.jobs.values(), key=lambda j: j.id)],
                "photos": [render_admin_photo(self, p) for p in sorted(model.photos.values(), key=lambda p: p.id)],
                "profiles": [render_profile(self, p) for p in sorted(model.profiles.values(), key=lambda p: p.id)],
                "out_of_credits": model.out_of_credits,
                "faults": self.faults.to_dict(),
                "variants": list(self.personality.names),
                "processing_seconds": self.processing_seconds,
            }

    def reset(self) -> None:
        """Drop every record, object, fault and call count."""
        with self.state.lock:
            self.state.reset()
            self.objects.clear()
            self.state.save()
        self.faults.clear()
        self.reset_calls()


def _found(table: Mapping[int, R], key: int, what: str) -> R:
    """Return `table[key]`, or answer 404 naming what was not found."""
    record = table.get(key)
    if record is None:
        raise ApiError(404, f"{what} {key} not found")
    return record
