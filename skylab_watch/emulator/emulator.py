"""The Emulator: a `Studio` core served on a loopback socket, with a ticker and callbacks.

Usable in-process (a context manager yielding itself, `emu.url` being the
base URL) or from the CLI. The HTTP server only sees `Emulator.handle`,
which sends `/_emulator/` to the admin endpoints and everything else to
`Studio.handle`. Its admin methods are the operations that the
`/_emulator/` endpoints expose over HTTP.

Stopping and starting again on the same port with the same `data_dir`
keeps everything: records, bytes, the URL signing key (URLs handed out
before still work) and queued jobs, whose progress is a function of the
clock and continues where it was.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable

from skylab_watch.emulator.admin import ADMIN_PREFIX, serve_admin
from skylab_watch.emulator.callbacks import CallbackSender
from skylab_watch.emulator.core import FOURTEEN_DAYS, Studio
from skylab_watch.emulator.faults import Faults
from skylab_watch.emulator.profile_specs import ProfileSpec, parse_profile_spec, seed_profiles
from skylab_watch.emulator.protocol import Request, Response
from skylab_watch.emulator.server import EmulatorHTTPServer


class Emulator:
    """A local Skylab Studio: `with Emulator(api_key="k") as emu: requests.get(emu.url + ...)`.

    `profiles`: specs such as "Cut-outs:extract:dual" (see profile_specs.py)
    created at start unless a profile of that name exists. `variants`: the
    personalities to take on (see variants.py; `VARIANTS` lists them).
    Raise ValueError for an empty key, an unknown variant or an unusable
    profile spec, and faults.FaultError for a bad fault document.
    """

    def __init__(self, api_key: str, processing_seconds: float = 2.0, callback_secret: str | None = None,
                 data_dir: str | Path | None = None, host: str = "127.0.0.1", port: int = 0,
                 faults: dict[str, Any] | None = None, upload_url_seconds: float = 900.0,
                 download_url_seconds: float = FOURTEEN_DAYS, tick_seconds: float = 0.05,
                 profiles: Iterable[str | ProfileSpec] = (), variants: Iterable[str] = ()) -> None:
        self.studio = Studio(api_key, processing_seconds, data_dir, upload_url_seconds,
                             download_url_seconds, tuple(variants))
        self.host, self.port = host, port
        self._tick_seconds = tick_seconds
        self.callbacks = CallbackSender(callback_secret)
        self.studio.on_job_finished = self.callbacks.send
        self._server: EmulatorHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        specs = [p if isinstance(p, ProfileSpec) else parse_profile_spec(p) for p in profiles]
        if faults:
            self.set_faults(faults)
        seed_profiles(self.studio, specs)

    # ---- lifecycle -------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, e.g. "http://127.0.0.1:8765" (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def processing_seconds(self) -> float:
        """Time from queue to completed; settable while running."""
        return self.studio.processing_seconds

    @processing_seconds.setter
    def processing_seconds(self, value: float) -> None:
        self.studio.processing_seconds = float(value)

    @property
    def faults(self) -> Faults:
        """The current fault settings."""
        return self.studio.faults

    def start(self) -> Emulator:
        """Bind the socket and start serving, ticking and delivering callbacks."""
        self._server = EmulatorHTTPServer((self.host, self.port), self.handle)
        self.port = self._server.server_address[1]
        self.studio.base_url = self.url
        self.studio.open()
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
        """Stop serving, stop writing the state, join the threads; safe to call twice.

        After stop the data directory is never written again by this
        instance, so a new one may start on it at once.
        """
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self.studio.close()
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
                self.studio.advance()
            except Exception:  # never let the ticker die; the next request retries
                pass

    def handle(self, req: Request) -> Response:
        """The one callable the HTTP server sees: admin endpoints here, the rest to the core."""
        if req.path.startswith(ADMIN_PREFIX):
            return serve_admin(self, req)
        return self.studio.handle(req)

    # ---- admin -----------------------------------------------------------

    def set_faults(self, faults: dict[str, Any], replace: bool = False) -> dict[str, Any]:
        """Merge (or with `replace`, set) fault settings; return the current ones.

        Raise faults.FaultError naming every bad key. `out_of_credits` sets the
        credits flag rather than being stored as a fault.
        """
        return self.studio.set_faults(faults, replace)

    def clear_faults(self) -> None:
        """Remove every fault; variants go back to those given at start (credits are left as they are)."""
        self.studio.faults.clear()

    def set_out_of_credits(self, out: bool) -> None:
        """Set the out-of-credits flag; False adds credits back."""
        self.studio.set_out_of_credits(out)

    def calls(self) -> dict[str, int]:
        """Return call counts per endpoint key ("POST jobs", "PUT store", ...)."""
        return self.studio.calls()

    def reset_calls(self) -> None:
        """Zero every call count."""
        self.studio.reset_calls()

    def state(self) -> dict[str, Any]:
        """Return everything the emulator knows (documented shapes), for tests and the admin endpoint."""
        doc = self.studio.snapshot()
        doc["callbacks"] = self.callbacks.deliveries()
        return doc

    def reset(self) -> None:
        """Drop every record, object, fault, call count and callback log entry."""
        self.studio.reset()
        self.callbacks.clear()
