"""Idle CPU: the daemon watching N files that are all done, with each observer.

After READY=1 and a short pause, the CPU seconds the daemon uses (user +
system, all threads, from /proc/PID/stat) over a window, as a share of one
core. The polling observer runs at its default interval.
"""

from __future__ import annotations

import shutil
import time
from typing import Any

from bench.common import EmulatorProcess, cpu_seconds, work_dir
from bench.startup import cached_tree, start_daemon


def measure(count: int, observer: str, seconds: float) -> float:
    """Return the daemon's CPU use with `observer` over `seconds`, in % of one core."""
    scratch = work_dir(f"idle-{observer}")
    try:
        with EmulatorProcess(scratch, latency=0) as emu, start_daemon(count, scratch, emu.url, observer) as daemon:
            daemon.wait_ready(timeout=300)
            time.sleep(min(3.0, seconds))  # the start-up scan's tail and first rescan timers
            cpu_before, wall_before = cpu_seconds(daemon.pid), time.perf_counter()
            time.sleep(seconds)
            used = cpu_seconds(daemon.pid) - cpu_before
            return 100 * used / (time.perf_counter() - wall_before)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run(quick: bool, count: int | None = None, seconds: float | None = None) -> dict[str, Any]:
    """Run the idle part for both observers; print and return the figures."""
    count = count or (1_000 if quick else 10_000)
    seconds = seconds or (3.0 if quick else 30.0)
    print(f"idle: {count} files all done, CPU over {seconds:g} s", flush=True)
    cached_tree(count)
    result: dict[str, Any] = {"files": count, "seconds": seconds}
    for observer in ("native", "polling"):
        result[observer] = measure(count, observer, seconds)
        print(f"  {observer:<8} {result[observer]:.2f} % of a core (goal for polling: <= 1 %)", flush=True)
    return result
