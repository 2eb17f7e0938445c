"""Shared helpers for the watch tests: real images and condition waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyvips


def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll `condition` until it is truthy or `timeout` passes; return its last truthiness."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def noise_image(width: int, height: int) -> pyvips.Image:
    """An RGB image of random noise: detailed enough that a cut-short file really lacks pixels."""
    bands = [pyvips.Image.gaussnoise(width, height, mean=128, sigma=40) for _ in range(3)]
    return bands[0].bandjoin(bands[1:]).cast("uchar")


def write_image(path: Path, width: int = 64, height: int = 48) -> Path:
    """Write a small real photo (noise with a drawn rectangle) in the format named by the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = noise_image(width, height).draw_rect([255, 0, 0], 0, 0, max(1, width // 4), height, fill=True)
    image.write_to_file(str(path))
    return path


class Recorder:
    """Collect the paths an observer reports, from its thread, safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.paths: list[str] = []

    def __call__(self, rel_path: str) -> None:
        with self._lock:
            self.paths.append(rel_path)

    def seen(self) -> set[str]:
        with self._lock:
            return set(self.paths)
