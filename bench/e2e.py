"""End to end: photos in, outputs out, with 2 s of processing at Studio.

The daemon runs as a child process over photos already in its input; the
ledger says when the first output landed and when every photo was
delivered; /proc says its memory (RSS when ready, the peak, and at the end).
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from bench.common import (DaemonProcess, EmulatorProcess, MemorySampler, cached_photos, place_photos, rss_mb,
                          wait_until, work_dir, write_daemon_config)

DELIVERED = ("delivered", "done")


def run(quick: bool, count: int | None = None, latency: float = 0.05, processing: float = 2.0) -> dict[str, Any]:
    """Run the end-to-end part; print and return its figures."""
    count = count or (15 if quick else 500)
    size = (600, 400) if quick else (3000, 2000)
    photos = cached_photos(count, *size)
    print(f"e2e: {count} photos of {size[0]}x{size[1]}, {processing:g} s processing, "
          f"{latency * 1000:.0f} ms per call", flush=True)
    scratch = work_dir("e2e")
    place_photos(photos, scratch / "in", per_folder=100)
    with EmulatorProcess(scratch, latency, processing_seconds=processing) as emu:
        config = write_daemon_config(scratch, emu.url)
        with DaemonProcess(config) as daemon:
            ready = daemon.wait_ready()
            rss_start = rss_mb(daemon.pid)
            with MemorySampler(daemon.pid) as memory:
                first = ready + wait_until(lambda: daemon.count(DELIVERED) >= 1, 900, "a first output")

                def all_delivered() -> bool:
                    if daemon.count(("failed", "rejected", "duplicate")):
                        raise RuntimeError(f"the daemon failed or rejected photos; see {scratch}/daemon.log")
                    return daemon.count(DELIVERED) >= count
                wait_until(all_delivered, 1800, "every photo delivered", interval=0.2)
                total = time.perf_counter() - daemon.started
                time.sleep(1)  # let the last deliveries' buffers go before reading "end"
                rss_end, peak = rss_mb(daemon.pid), rss_mb(daemon.pid, "VmHWM")
    result = {"photos": count, "seconds": total, "per_minute": count / total * 60, "first_output": first,
              "rss_start": rss_start, "rss_peak": max(peak, *memory.samples, 0.0), "rss_end": rss_end}
    print(f"  {result['per_minute']:.0f} photos/min ({total:.1f} s in all); first output after {first:.1f} s "
          f"(ready after {ready:.1f} s)", flush=True)
    print(f"  daemon RSS: start {rss_start:.0f} MB, peak {result['rss_peak']:.0f} MB, end {rss_end:.0f} MB "
          "(goal: steady state <= 200 MB)", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return result
