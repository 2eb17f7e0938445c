"""Resident memory through a night of deliveries, with and without the process memory settings.

Runs the daemon's real delivery code (download check, render, streamed
write through `outputs.write_atomically`, check of the written file) and the
intake's read-and-hash of originals, on worker pools shaped like the
daemon's (downloads.concurrency and uploads.concurrency, 4 each), for N
photos of 3000x2000, and prints RSS at start, after every 500 deliveries,
and the peak (VmHWM). Each variant runs in a fresh process:

- `default`: glibc and libvips as they come (only imaging's cache switch-off);
- `settings`: what `skylab-watch run` does at start (`skylab_watch.process_memory`);
- `env`: MALLOC_ARENA_MAX=2 in the environment instead of mallopt, and the same libvips bounds.

Run: .venv/bin/python bench/memory.py [N] [variant ...]   (N defaults to 1000)
Self-contained; no network, no emulator: the "download" is a local copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

STEP = 500


def rss_mb(field: str = "VmRSS") -> float:
    """Return this process's VmRSS (or VmHWM, the peak) in MB, from /proc/self/status."""
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0]) / 1024


def make_photos(folder: Path, width: int = 3000, height: int = 2000) -> tuple[Path, Path]:
    """Write a camera-size JPEG original and a PNG-free JPEG "result" of the same size."""
    import pyvips

    bands = [pyvips.Image.gaussnoise(width, height, mean=128, sigma=30) for _ in range(3)]
    image = bands[0].bandjoin(bands[1:]).cast("uchar").gaussblur(1.2)
    original, result = folder / "original.jpg", folder / "result.jpg"
    image.write_to_file(str(original), Q=92)
    image.invert().write_to_file(str(result), Q=92)
    return original, result


def deliver_one(index: int, result: Path, work: Path) -> None:
    """Deliver one photo the daemon's way: stage the download, check it, render and check the output."""
    from skylab_watch import imaging, outputs

    staged = work / f"{index}.part"
    shutil.copyfile(result, staged)
    imaging.check_pixel_budget(staged, "the result")
    imaging.check_decodes(staged)
    plan = imaging.OutputPlan(None, "jpg", imaging.RETOUCHED)
    out = work / f"out-{index}.jpg"
    outputs.write_atomically(out, lambda sink: imaging.write_output(plan, staged, [], sink),
                             tag=str(index), check=imaging.check_decodes)
    staged.unlink()
    out.unlink()


def intake_one(original: Path) -> str:
    """Read and hash an original in chunks, as an upload does."""
    digest = hashlib.md5()
    with open(original, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_variant(count: int, variant: str) -> None:
    """In this (fresh) process: apply the variant's settings, deliver `count` photos, print RSS as we go."""
    if variant in ("settings", "env"):
        from skylab_watch import process_memory

        process_memory.limit_malloc_arenas()  # a no-op under "env": MALLOC_ARENA_MAX is set
        process_memory.bound_libvips()
    from skylab_watch import imaging  # noqa: F401 - loads libvips before the start figure

    with tempfile.TemporaryDirectory(prefix="skylab-memory-") as tmp:
        original, result = make_photos(Path(tmp))
        work = Path(tmp) / "work"
        work.mkdir()
        print(f"{variant}: start {rss_mb():.0f} MB", flush=True)
        done, lock, started = [0], threading.Lock(), time.monotonic()

        def one(i: int) -> None:
            deliver_one(i, result, work)
            with lock:
                done[0] += 1
                if done[0] % STEP == 0:
                    print(f"{variant}: after {done[0]} deliveries {rss_mb():.0f} MB "
                          f"({time.monotonic() - started:.0f} s)", flush=True)

        with ThreadPoolExecutor(4) as uploads, ThreadPoolExecutor(4) as deliveries:
            for i in range(count):
                uploads.submit(intake_one, original)
                deliveries.submit(one, i)
        print(f"{variant}: end {rss_mb():.0f} MB, peak {rss_mb('VmHWM'):.0f} MB", flush=True)


def main(argv: list[str]) -> int:
    """Run each variant in its own process, so that no peak carries over."""
    count = int(argv[0]) if argv else 1000
    variants = argv[1:] or ["default", "settings"]
    if os.environ.get("SKYLAB_MEMORY_VARIANT"):
        run_variant(count, os.environ["SKYLAB_MEMORY_VARIANT"])
        return 0
    print(f"{count} deliveries of 3000x2000 on {os.cpu_count()} cores, 4+4 workers", flush=True)
    for variant in variants:
        env = {**os.environ, "SKYLAB_MEMORY_VARIANT": variant}
        env.pop("MALLOC_ARENA_MAX", None)
        env.pop("VIPS_CONCURRENCY", None)
        if variant == "env":
            env["MALLOC_ARENA_MAX"] = "2"
        subprocess.run([sys.executable, __file__, str(count)], env=env, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
