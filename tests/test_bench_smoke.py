"""The benchmark (`make bench`, not part of the suite) kept from rotting: one quick ingest run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_ingest_bench_runs_the_daemon_and_the_bare_uploader_and_prints_their_ratio(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "SKYLAB_BENCH_CACHE": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "bench", "ingest", "--quick", "--photos", "4",
                           "--only", "daemon,bare"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "daemon upload stage vs bare 16-thread uploader" in proc.stdout, proc.stdout
    assert "4 photos of 600x400" in proc.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("daemon-", "bare-"))], "scratch left behind"
