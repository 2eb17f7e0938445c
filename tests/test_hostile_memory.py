"""The daemon's peak memory through a night of hostile files stays within bounds (issue 11).

One real `run --once` process takes in a decompression bomb, a small PNG
that decodes to 25 MP, a file over Studio's byte limit, a FIFO, a link to
/dev/zero, an over-long name and camera-size control photos; its peak RSS
comes from the kernel (wait4's rusage of that very child), not a sample.
"""

from __future__ import annotations

import os
import time

from bombs import make_png_bomb, make_slow_png
from daemon_helpers import start_process, write_config
from support import make_image

from skylab_watch.ledger import Ledger

PEAK_RSS_LIMIT_MB = 300


def _wait_for_exit(pid: int, timeout: float) -> tuple[int, float]:
    """Reap `pid`; return its exit code and peak RSS in MB (ru_maxrss is in KiB on Linux)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024
        time.sleep(0.1)
    os.kill(pid, 9)
    os.wait4(pid, 0)
    raise AssertionError(f"run --once did not end within {timeout} s")


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
    code, peak_mb = _wait_for_exit(proc.pid, timeout=120)
    proc.returncode = code  # reaped above; keep Popen from waiting again
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
    assert peak_mb < PEAK_RSS_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB"
    print(f"peak RSS of the daemon through the hostile night: {peak_mb:.0f} MB")
