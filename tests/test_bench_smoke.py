"""The benchmark (`make bench`, not part of the suite) kept from rotting: one quick ingest by the daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_ingest_bench_runs_the_daemon_until_every_photo_is_queued_and_cleans_up(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "SKYLAB_BENCH_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "bench", "ingest", "--quick", "--photos", "2", "--only", "daemon"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ingest: 2 photos of 600x400" in proc.stdout
    assert "s to all queued; upload stage" in proc.stdout and "POST jobs/{id}/queue 1" in proc.stdout, proc.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("daemon-")], "scratch left behind"
