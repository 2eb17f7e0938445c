"""The Emulator: wires state, store, faults, callbacks and the HTTP server.

Usable in-process (a context manager yielding itself, `emu.url` being the
base URL) or from the CLI. Its admin methods are the same operations that the
`/_emulator/` endpoints expose over HTTP.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from skylab_watch.emulator import processing
from skylab_watch.emulator.callbacks import CallbackSender
from skylab_watch.emulator.faults import Faults, validate
from skylab_watch.emulator.progress import advance_jobs
from skylab_watch.emulator.server import EmulatorHTTPServer
from skylab_watch.emulator.state import AccountState, Profile
from skylab_watch.emulator.store import ObjectStore, UrlSigner, original_key
from skylab_watch.emulator.views import render_admin_job, render_admin_photo, render_job, render_profile

FOURTEEN_DAYS = 14 * 24 * 3600.0
CACHE_LIMIT = 256


class Emulator:
    """A local Skylab Studio: `with Emulator(api_key="k") as emu: requests.get(emu.url + ...)`."""

    def __init__(self, api_key: str, processing_seconds: float = 2.0, callback_secret: str | None = None,
                 data_dir: str | Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 faults: dict[str, Any] | None = None, upload_url_seconds: float = 900.0,
                 download_url_seconds: float = FOURTEEN_DAYS, tick_seconds: float = 0.05) -> None:
        if not api_key:
            raise ValueError("the emulator needs a non-empty api_key")
        self.api_key = api_key
        self.processing_seconds = float(processing_seconds)
        self.upload_url_seconds = float(upload_url_seconds)
        self.download_url_seconds = float(download_url_seconds)
        self.host, self.port = host, port
        self._tick_seconds = tick_seconds
        self.state_model = AccountState(Path(data_dir) if data_dir is not None else None)
        self.objects = ObjectStore(self.state_model.data_dir)
        self.signer = UrlSigner(self.state_model.signing_key)
        self.faults = Faults()
        self.callbacks = CallbackSender(callback_secret)
        self._calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()
        self._cache: dict[tuple[str, processing.OutputSpec], tuple[bytes, str]] = {}
        self._cache_lock = threading.Lock()
        self._server: EmulatorHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        if faults:
            self.set_faults(faults)

    # ---- lifecycle -------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. "http://127.0.0.1:8765" (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def start(self) -> Emulator:
        """Bind the socket and start serving, ticking and delivering callbacks."""
        self._server = EmulatorHTTPServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._stopping.clear()
        self.callbacks.start()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                             name="emulator-http", daemon=True),
            threading.Thread(target=self._tick, name="emulator-ticker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the threads; safe to call twice."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        for thread in self._threads:
            thread.join(timeout=5)
        self.callbacks.stop()
        self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _tick(self) -> None:
        """Advance jobs regularly so that callbacks fire without any request."""
        while not self._stopping.wait(self._tick_seconds):
            try:
                self.advance()
            except Exception:  # never let the ticker die; the next request retries
                pass

    # ---- used by the endpoints -------------------------------------------

    def count_call(self, key: str) -> None:
        """Record one call to an endpoint key."""
        with self._calls_lock:
            self._calls[key] += 1

    def advance(self) -> None:
        """Settle job statuses from the clock and send the callbacks that became due."""
        with self.state_model.lock:
            due = advance_jobs(self.state_model, time.time(), self.processing_seconds)
            bodies = [(job_id, self.state_model.jobs[job_id].callback_url,
                       json.dumps(render_job(self, self.state_model.jobs[job_id]))) for job_id in due]
        for job_id, url, body in bodies:
            self.callbacks.send(job_id, str(url), body)

    def upload_url(self, photo_id: int, md5: str | None) -> str:
        """Return a presigned PUT URL for a photo's bytes."""
        return self.signer.sign(self.url, "PUT", f"/_store/originals/{photo_id}",
                                self.upload_url_seconds, md5)

    def original_url(self, photo_id: int) -> str:
        """Return a presigned GET URL for a photo's uploaded bytes."""
        return self.signer.sign(self.url, "GET", f"/_store/originals/{photo_id}", self.download_url_seconds)

    def retouched_url(self, photo_id: int) -> str:
        """Return a presigned GET URL for a photo's output (TTL settable by fault)."""
        ttl = self.faults.retouched_url_seconds(self.download_url_seconds)
        return self.signer.sign(self.url, "GET", f"/_store/retouched/{photo_id}", ttl)

    def store_original(self, photo_id: int, data: bytes, tagging: str | None) -> bool:
        """Keep a photo's uploaded bytes; False if the photo no longer exists."""
        with self.state_model.lock:
            photo = self.state_model.photos.get(photo_id)
            if photo is None:
                return False
            self.objects.put(original_key(photo_id), data)
            photo.md5, photo.size = hashlib.md5(data).hexdigest(), len(data)
            photo.tagging, photo.uploaded_at = tagging, time.time()
            self.state_model.save()
            return True

    def forget_photo(self, photo_id: int) -> None:
        """Delete a photo record and its bytes (caller holds the state lock)."""
        self.state_model.photos.pop(photo_id, None)
        self.objects.delete(original_key(photo_id))

    def retouched_bytes(self, photo_id: int) -> tuple[bytes, str] | None:
        """Return (bytes, content type) of a photo's output, or None if it has none."""
        with self.state_model.lock:
            photo = self.state_model.photos.get(photo_id)
            job = self.state_model.jobs.get(photo.job_id) if photo and photo.job_id else None
            profile = self.state_model.profiles.get(job.profile_id) if job else None
            if photo is None or not photo.retouched or profile is None or photo.md5 is None:
                return None
            key = (photo.md5, _spec(profile))
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

    # ---- admin -----------------------------------------------------------

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

    def clear_faults(self) -> None:
        """Remove every fault (the credits flag is left as it is)."""
        self.faults.clear()

    def set_out_of_credits(self, out: bool) -> None:
        """Set the out-of-credits flag; False adds credits back."""
        with self.state_model.lock:
            self.state_model.out_of_credits = out
            self.state_model.save()

    def calls(self) -> dict[str, int]:
        """Return call counts per endpoint key ("POST jobs", "PUT store", ...)."""
        with self._calls_lock:
            return dict(self._calls)

    def reset_calls(self) -> None:
        """Zero every call count."""
        with self._calls_lock:
            self._calls.clear()

    def state(self) -> dict[str, Any]:
        """Return everything the emulator knows, for tests and the admin endpoint."""
        self.advance()
        with self.state_model.lock:
            model = self.state_model
            return {
                "jobs": [render_admin_job(self, j) for j in sorted(model.jobs.values(), key=lambda j: j.id)],
                "photos": [render_admin_photo(self, p) for p in sorted(model.photos.values(), key=lambda p: p.id)],
                "profiles": [render_profile(self, p) for p in sorted(model.profiles.values(), key=lambda p: p.id)],
                "out_of_credits": model.out_of_credits,
                "faults": self.faults.to_dict(),
                "callbacks": self.callbacks.deliveries(),
                "processing_seconds": self.processing_seconds,
            }

    def reset(self) -> None:
        """Drop every record, object, fault, call count and callback log entry."""
        with self.state_model.lock:
            self.state_model.reset()
            self.objects.clear()
            self.state_model.save()
        self.faults.clear()
        self.reset_calls()
        self.callbacks.clear()


def _spec(profile: Profile) -> processing.OutputSpec:
    """Return what a profile asks of its outputs."""
    return processing.OutputSpec(extract=profile.enable_extract, output_file_type=profile.output_file_type,
                                 crop=profile.enable_crop, strip_metadata=profile.enable_strip_png_metadata)
