"""A night of trouble at once: 150 photos over two watches under 10% 5xx on every API call, 5%
429 with Retry-After, 5% failed and 2% corrupted PUTs (a photo corrupted twice in a row),
expired download links, a spell without credits and an emulator restart. Every photo must be
delivered exactly once, with outputs identical to a fault-free run of the same photos."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from daemon_helpers import DaemonThread, compress_time, studio_photos, write_config
from support import API_KEY, free_port, make_image, wait_for

from skylab_watch.emulator import Emulator

PER_WATCH = 75
NIGHT = {
    "seed": 7,
    "errors": {"*": [{"status": 500, "rate": 0.05}, {"status": 503, "rate": 0.05},
                     {"status": 429, "rate": 0.05, "retry_after": 0.2}]},
    "put_fail_rate": 0.05,
    "put_corrupt_rate": 0.02, "put_corrupt_repeat": 2,
    "expire_downloads_rate": 0.05,
}



def _drop_photos(root: Path) -> None:
    for watch in ("studio-a", "studio-b"):
        for i in range(PER_WATCH):
            seed = i + (0 if watch == "studio-a" else 500)
            make_image(root / watch / f"set{i % 3}" / f"IMG_{i:04d}.jpg", 96, 72, seed=seed)


def _config(tmp: Path, url: str) -> Path:
    watches = [{"name": w, "input": tmp / w, "output": tmp / "out" / w, "profile": "plain",
                "batch": {"max_photos": 20, "quiet_seconds": 0.3, "max_wait_seconds": 2}}
               for w in ("studio-a", "studio-b")]
    return write_config(tmp, url, watches, uploads={"concurrency": 8})


def _outputs(tmp: Path) -> dict[str, str]:
    out = tmp / "out"
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def _night(tmp: Path, faults: bool) -> tuple[dict[str, str], list[str], float]:
    """Run the daemon over the 150 photos; return (outputs, names sent to Studio, seconds)."""
    port, data = free_port(), tmp / "emulator-data"
    emu = Emulator(api_key=API_KEY, processing_seconds=0.3, data_dir=data, port=port, profiles=["plain"])
    emu.start()
    cfg = _config(tmp, emu.url)
    started = time.monotonic()
    with DaemonThread(cfg) as d:
        compress_time(d)
        if faults:
            emu.set_faults(NIGHT)
        _drop_photos(tmp)
        done = lambda n: len(d.ledger.photos_in_state("done")) >= n  # noqa: E731
        if faults:
            wait_for(lambda: done(30), timeout=60, what="a first part of the night")
            emu.set_faults({"out_of_credits": True})
            wait_for(lambda: "credits" in d.ledger.notices(), timeout=30, what="the credits spell")
            emu.set_faults({"out_of_credits": False})
            wait_for(lambda: done(60), timeout=60, what="work after the credits spell")
            emu.stop()                                    # the service restarts mid-night
            emu = Emulator(api_key=API_KEY, processing_seconds=0.3, data_dir=data, port=port, faults=NIGHT)
            emu.start()
        wait_for(lambda: done(2 * PER_WATCH), timeout=150, interval=0.2, what="every photo delivered")
        failed = [p.reason for p in d.ledger.photos_in_state("failed")]
        assert not failed, failed
        notices = d.ledger.notices()
    seconds = time.monotonic() - started
    emu.clear_faults()
    sent = [f'{p["name"]}' for p in studio_photos(emu)]
    emu.stop()
    assert "credits" not in notices, "the credits notice ends with its cause"
    return _outputs(tmp), sent, seconds


def test_a_night_of_every_fault_at_once_delivers_every_photo_once_and_identically(tmp_path, capsys):
    calm, calm_sent, calm_seconds = _night(tmp_path / "calm", faults=False)
    rough, rough_sent, rough_seconds = _night(tmp_path / "rough", faults=True)
    assert len(calm) == 2 * PER_WATCH
    assert rough == calm, "the same outputs, byte for byte, as a night without trouble"
    assert len(rough_sent) == len(calm_sent) == 2 * PER_WATCH, "every photo sent to Studio exactly once"
    with capsys.disabled():
        print(f"\nfault soak: {len(rough)} delivered in {rough_seconds:.1f} s; fault-free {calm_seconds:.1f} s")
