"""The daemon's peak memory through a night of hostile files stays within bounds (issue 11).

One real `run --once` process takes in a decompression bomb, a small PNG
that decodes to 25 MP, a file over Studio's byte limit, a FIFO, a link to
/dev/zero, an over-long name and camera-size control photos; its peak RSS
is the kernel's high-water mark of the daemon's own memory (VmHWM).
"""

from __future__ import annotations

import os
import subprocess
import time

from bombs import make_png_bomb, make_slow_png
from daemon_helpers import start_process, write_config
from support import make_image

from skylab_watch.ledger import Ledger

PEAK_RSS_LIMIT_MB = 300


def _wait_for_exit(proc: subprocess.Popen, timeout: float) -> tuple[int, float]:
    """Wait for the daemon; return its exit code and peak RSS in MB (VmHWM, polled until it exits).

    Not wait4's ru_maxrss: Linux folds the parent's high-water mark into it at exec, so a child of a
    fat pytest worker would report the worker's peak. VmHWM belongs to the daemon's own memory map
    and only grows, so the last reading before the exit is the peak, give or take the last 50 ms.
    """
    deadline = time.monotonic() + timeout
    peak_kb = 0
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError(f"run --once did not end within {timeout} s")
        try:
            with open(f"/proc/{proc.pid}/status") as status:
                peak_kb = max([peak_kb] + [int(line.split()[1]) for line in status if line.startswith("VmHWM")])
        except (OSError, ValueError, IndexError):
            pass  # exiting right now
        time.sleep(0.05)
    return proc.returncode, peak_kb / 1024


def test_a_night_of_hostile_files_keeps_the_daemon_under_300_mb_and_delivers_the_good_photos(
        tmp_path, plain_emulator) -> None:
    inbox = tmp_path / "in"
    make_png_bomb(inbox / "bomb.png")
    make_slow_png(inbox / "huge-but-valid.png")  # 25 MP: decoded in full to prove it whole
    (inbox / "too-big.jpg").write_bytes(os.urandom(28 * 2**20))
    os.mkfifo(inbox / "pipe.jpg")
    os.symlink("/dev/zero", inbox / "zero.jpg")
    make_image(inbox / ("n" * 240 + ".jpg"), seed=3)
    for seed in range(2):
        make_image(inbox / f"camera-{seed}.jpg", width=4000, height=3000, seed=seed)
    cfg = write_config(tmp_path, plain_emulator.url, [
        {"name": "w", "input": inbox, "output": tmp_path / "out", "profile": "plain"}])
    proc = start_process(cfg, "--once")
    code, peak_mb = _wait_for_exit(proc, timeout=120)
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite3")
    try:
        states = {p.rel_path: (p.state, p.reason) for p in ledger.photos_in_state(
            "done", "rejected", "failed", "delivered")}
    finally:
        ledger.close()
    assert states["bomb.png"][0] == "rejected" and "60000 x 60000" in states["bomb.png"][1]
    assert states["too-big.jpg"][0] == "rejected"
    for good in ("camera-0.jpg", "camera-1.jpg", "huge-but-valid.png", "n" * 240 + ".jpg"):
        assert states[good][0] == "done", (good, states.get(good))
    assert (tmp_path / "out" / "camera-0.jpg").stat().st_size > 0
    assert code == 3, "all done, with files rejected"
    assert peak_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    print(f"peak RSS of the daemon through the hostile night: {peak_mb:.0f} MB")
