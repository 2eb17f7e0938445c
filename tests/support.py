"""Shared test support: the API key, real images made with pyvips, and waiting on conditions."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Callable

import pyvips


API_KEY = "test-key-0123456789"


def plain_studio(**options: object):
    """Return an emulator (not started) whose account has a plain profile named `plain`; processing is
    fast (0.3 s) unless `processing_seconds` says otherwise. Use it as a context manager."""
    from skylab_watch.emulator import Emulator
    options.setdefault("processing_seconds", 0.3)
    return Emulator(api_key=API_KEY, profiles=["plain"], **options)  # type: ignore[arg-type]


def make_image(path: Path, width: int = 160, height: int = 120, seed: int = 0) -> Path:
    """Write a real photo-like image (a coloured subject on a light background) and return its path."""
    background = pyvips.Image.black(width, height, bands=3) + [235, 235, 230]
    # Colours far apart per seed: JPEG would encode near-identical shades as identical bytes.
    colour = [40 + (seed * 37) % 200, 30 + (seed * 53) % 180, 200 - (seed * 29) % 160]
    subject = pyvips.Image.black(width // 2, height // 2, bands=3) + colour
    image = background.insert(subject, width // 4, height // 4).cast("uchar")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.write_to_file(str(path))
    return path


def wait_for(condition: Callable[[], object], timeout: float = 20.0, interval: float = 0.05, what: str = ""):
    """Poll `condition` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def free_port() -> int:
    """Return a loopback port free right now, for a server that must be configured before it starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
