"""`python -m bench [PART ...] [--quick]`: the benchmarks of issue 13 (see README, "Benchmarks").

Parts: ingest, bandwidth, e2e, startup, idle, queue (default: all, in that order).
`--quick` uses small numbers (a smoke test of a minute or so, not a measurement).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from pathlib import Path

PARTS = ("ingest", "bandwidth", "e2e", "startup", "idle", "queue")


def machine() -> str:
    """Return the machine a figure came from: cores, CPU model, memory, kernel."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:")), 0)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, {memory} MB RAM, Linux {platform.release()}, load average {load}"


def compile_package() -> None:
    """Compile skylab_watch's modules once, as installing a package does. A checkout run with
    PYTHONDONTWRITEBYTECODE set (this machine sets it), or edited since, would otherwise compile every module
    again in each daemon and emulator the bench starts, and the start-up figures would measure the compiler
    (0.15 s a start here)."""
    import compileall

    compileall.compile_dir(Path(__file__).resolve().parent.parent / "skylab_watch", quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help=f"which parts to run ({', '.join(PARTS)}); default: all")
    parser.add_argument("--quick", action="store_true", help="small numbers: a smoke test, not a measurement")
    parser.add_argument("--photos", type=int, default=None, help="photos for ingest/bandwidth/e2e")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds added to every emulator call")
    parser.add_argument("--only", default="official,daemon,bare",
                        help="ingest: which runs (official, daemon, bare), comma-separated")
    parser.add_argument("--runs", type=int, default=None,
                        help="ingest: runs of the daemon and of the bare uploader (default 3, 1 with --quick)")
    parser.add_argument("--files", type=int, default=None, help="startup/idle: files in the tree")
    parser.add_argument("--idle-seconds", type=float, default=None, help="idle: seconds of CPU measured")
    args = parser.parse_args(argv)
    # A stopped bench (kill, or Ctrl-C in a shell that ignores it in the background) still stops
    # its emulator and daemon children: SystemExit unwinds through their context managers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parts = args.parts or list(PARTS)
    print(f"machine: {machine()}", flush=True)
    compile_package()
    started = time.perf_counter()
    for part in parts:
        if part == "ingest":
            from bench import ingest
            ingest.run(args.quick, args.photos, args.latency, tuple(args.only.split(",")), args.runs)
        elif part == "bandwidth":
            from bench import bandwidth
            bandwidth.run(args.quick, args.photos, args.latency)
        elif part == "e2e":
            from bench import e2e
            e2e.run(args.quick, args.photos, args.latency)
        elif part == "startup":
            from bench import startup
            startup.run(args.quick, args.files)
        elif part == "idle":
            from bench import idle
            idle.run(args.quick, args.files, args.idle_seconds)
        elif part == "queue":
            from bench import queue_call
            queue_call.run(args.quick, args.photos)
    print(f"bench: done in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
