"""Ingest: the same photos to Studio three ways, against the same emulator settings.

- the official `skylab-studio` 0.0.15 client's README flow, sequential
  (create a job, upload each photo, queue), in its own process;
- the daemon (`skylab-watch run`, uploads.concurrency 16), files present
  before it starts, until every photo is in a queued job (read from its ledger);
- a bare concurrent uploader: 16 threads of our StudioClient doing
  create / upload / queue with no ledger, the ceiling for the upload stage.

Each run gets a fresh emulator child process with the same added latency and
processing long enough (10 min) that no output is delivered during the run:
only getting photos to Studio is measured.
Times run from process start (or, for the bare uploader, the first call) to
the last queue; the upload stage is read from the emulator: first photo
record created to last bytes stored.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (AT_STUDIO, KEY, PROFILE, DaemonProcess, EmulatorProcess, cached_photos, cpu_seconds,
                          place_photos, wait_until, work_dir, write_daemon_config)

INGEST_PROCESSING = 600.0  # seconds: nothing comes back while photos go up

SENTRY_STUB = '"""Stub: the official client calls sentry_sdk.init unconditionally; send nothing."""\n' \
              "def init(*args, **kwargs):\n    pass\n"

OFFICIAL_FLOW = textwrap.dedent('''
    import sys
    from skylab_studio import api as Api
    api = Api(api_key=sys.argv[1])
    profile = next(p for p in api.list_profiles() if p["name"] == sys.argv[2])
    job = api.create_job({"name": "official-run", "profile_id": profile["id"]})
    for path in sys.argv[3:]:
        api.upload_job_photo(path, job["id"])
    api.queue_job(job["id"], {})
''')


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def upload_stage(emu: EmulatorProcess) -> dict[str, float]:
    """Return the upload stage as Studio saw it: first photo created to last bytes stored."""
    photos = [p for p in emu.admin("state")["photos"] if p.get("jobId") is not None]
    stored = [p for p in photos if p.get("uploadedAt")]
    if not stored:
        return {"photos": 0, "seconds": 0.0, "rate": 0.0, "mb_per_s": 0.0}
    first = min(_parse_time(p["createdAt"]) for p in photos)
    last = max(_parse_time(p["uploadedAt"]) for p in stored)
    seconds = max(last - first, 1e-3)
    size = sum(p.get("size") or 0 for p in stored)
    return {"photos": len(stored), "seconds": seconds, "rate": len(stored) / seconds,
            "mb_per_s": size / seconds / 1e6}


def run_official(photos: list[Path], latency: float) -> dict[str, Any]:
    """Run the official client's README flow over `photos`; return its wall time and upload stage."""
    scratch = work_dir("official")
    stub = scratch / "stub" / "sentry_sdk"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text(SENTRY_STUB)
    with EmulatorProcess(scratch, latency, INGEST_PROCESSING) as emu:
        env = {"PYTHONPATH": str(scratch / "stub"), "SKYLAB_API_URL": emu.url, "PATH": "/usr/bin:/bin"}
        started, children_before = time.perf_counter(), _children_cpu()
        proc = subprocess.run([sys.executable, "-c", OFFICIAL_FLOW, KEY, PROFILE, *map(str, photos)],
                              env=env, capture_output=True, text=True, cwd=scratch)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"the official client failed: {proc.stderr[-2000:]}")
        cpu = {"client": _children_cpu() - children_before, "emulator": cpu_seconds(emu.proc.pid)}
        return {"seconds": seconds, "upload": upload_stage(emu), "cpu": cpu, "scratch": scratch}


def run_daemon(photos: list[Path], latency: float, concurrency: int = 16,
               emulator: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run `skylab-watch run` over `photos` until all are in queued jobs; return times and upload stage.

    `emulator`: more options for the EmulatorProcess (the bandwidth part puts it in a namespace).
    """
    scratch = work_dir("daemon")
    place_photos(photos, scratch / "in")
    with EmulatorProcess(scratch, latency, INGEST_PROCESSING, **(emulator or {})) as emu:
        config = write_daemon_config(scratch, emu.url, concurrency=concurrency)
        with DaemonProcess(config) as daemon:
            ready = daemon.wait_ready()

            def all_queued() -> bool:
                if daemon.count(("failed", "rejected", "duplicate")):
                    raise RuntimeError(f"the daemon failed or rejected photos; see {scratch}/daemon.log")
                return daemon.count(AT_STUDIO) >= len(photos)
            wait_until(all_queued, timeout=600, what="every photo in a queued job", interval=0.1)
            seconds = time.perf_counter() - daemon.started
            calls = emu.admin("calls")
            cpu = {"client": cpu_seconds(daemon.pid), "emulator": cpu_seconds(emu.proc.pid)}
        return {"seconds": seconds, "ready": ready, "upload": upload_stage(emu), "calls": calls, "cpu": cpu,
                "lock": ledger_lock_line(scratch / "daemon.log"), "scratch": scratch}


def ledger_lock_line(log: Path) -> str:
    """The daemon's own account, logged as it stops, of how long its threads waited for the ledger's lock."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if "ledger lock:" in line]
    return lines[-1].split("ledger lock:", 1)[1].strip() if lines else "not logged"


def run_bare(photos: list[Path], latency: float, threads: int = 16) -> dict[str, Any]:
    """Upload `photos` with `threads` threads of our StudioClient, no ledger; return time and upload stage."""
    from skylab_watch.studio import StudioClient
    from skylab_watch.studio.upload import upload_photo_file

    scratch = work_dir("bare")
    with (EmulatorProcess(scratch, latency, INGEST_PROCESSING) as emu,
          StudioClient(emu.url, KEY, pool_size=threads) as client):
        started, own_before = time.perf_counter(), _own_cpu()
        profile = next(p for p in client.list_profiles() if p["name"] == PROFILE)
        job = client.create_job("bare-run", profile["id"])
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda path: upload_photo_file(client, path, job["id"]), photos))
        client.queue_job(job["id"])
        seconds = time.perf_counter() - started
        cpu = {"client": _own_cpu() - own_before, "emulator": cpu_seconds(emu.proc.pid)}
        return {"seconds": seconds, "upload": upload_stage(emu), "cpu": cpu, "scratch": scratch}


RUNS = 3
"""Runs of the daemon and of the bare uploader (their ratios use the median run): on two cores shared with the
emulator, one run of either varies by about 8 % from the next. The official client's sequential 40 s vary by
about 1 %, so it runs once."""


def run(quick: bool, count: int | None = None, latency: float = 0.05,
        which: tuple[str, ...] = ("official", "daemon", "bare"), runs: int | None = None) -> dict[str, Any]:
    """Run the ingest part; print and return its figures and ratios (of the median runs)."""
    count = count or (12 if quick else 200)
    runs = runs or (1 if quick else RUNS)
    size = (600, 400) if quick else (3000, 2000)
    photos = cached_photos(count, *size)
    mb = sum(p.stat().st_size for p in photos) / 1e6
    print(f"ingest: {count} photos of {size[0]}x{size[1]} ({mb:.0f} MB), {latency * 1000:.0f} ms per call; "
          f"daemon and bare uploader {runs} run(s) each, ratios of the median run", flush=True)
    results: dict[str, Any] = {}
    for name, runner in (("official", run_official), ("daemon", run_daemon), ("bare", run_bare)):
        if name not in which:
            continue
        tries = []
        for _ in range(1 if name == "official" else runs):
            tries.append(runner(photos, latency))
            _print_run(name, tries[-1])
        tries.sort(key=lambda result: result["seconds"])
        results[name] = tries[len(tries) // 2]
        for other in tries:
            if other is not results[name]:
                shutil.rmtree(other.pop("scratch"), ignore_errors=True)
    if "daemon" in results:
        print(f"  median daemon run: {results['daemon']['seconds']:.2f} s", flush=True)
        print(f"  daemon ready (READY=1) after {results['daemon']['ready']:.2f} s; API calls: "
              f"{_calls(results['daemon']['calls'])}", flush=True)
        print(f"  daemon ledger lock (whole run): {results['daemon']['lock']}", flush=True)
    ratios = {}
    if "official" in results and "daemon" in results:
        ratios["daemon_vs_sequential"] = results["official"]["seconds"] / results["daemon"]["seconds"]
        print(f"  daemon vs sequential official client: {ratios['daemon_vs_sequential']:.1f}x (goal >= 8x)")
    if "bare" in results and "daemon" in results and results["bare"]["upload"]["rate"]:
        ratios["upload_vs_bare"] = results["daemon"]["upload"]["rate"] / results["bare"]["upload"]["rate"]
        print(f"  daemon upload stage vs bare 16-thread uploader: {ratios['upload_vs_bare']:.0%} (goal >= 80%)")
    results["ratios"] = ratios
    for name in ("official", "daemon", "bare"):
        if name in results:
            shutil.rmtree(results[name].pop("scratch"), ignore_errors=True)
    return results


def _print_run(name: str, result: dict[str, Any]) -> None:
    up = result["upload"]
    print(f"  {name:<9} {result['seconds']:7.2f} s to all queued; upload stage {up['seconds']:.2f} s "
          f"= {up['rate']:.1f} photos/s, {up['mb_per_s']:.1f} MB/s; CPU {result['cpu']['client']:.1f} s"
          f" (emulator {result['cpu']['emulator']:.1f} s)", flush=True)


def _own_cpu() -> float:
    """CPU seconds (user + system) this process has used: the bare uploader runs in it."""
    times = os.times()
    return times.user + times.system


def _children_cpu() -> float:
    """CPU seconds of this process's waited-for children: the official client's process, once it has ended."""
    times = os.times()
    return times.children_user + times.children_system


def _calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(calls.items()) if n)
