"""`skylab-watch emulator` as a process: banner, serving, clean exit on signals."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import pytest
import requests

BANNER = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def _start(*extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "skylab_watch.emulator.cli", "--port", "0", "--api-key", "cli-secret-key", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()
    match = BANNER.search(line)
    if not match:
        proc.kill()
        pytest.fail(f"no banner: {line!r} {proc.stderr.read()}")
    assert "cli-secret-key" not in line and "hook-secret" not in line
    return proc, match.group(1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_exits_zero_on_signal(signum):
    proc, url = _start("--callback-secret", "hook-secret")
    try:
        reply = requests.get(url + "/api/public/v1/jobs", headers={"X-SLT-API-KEY": "cli-secret-key"}, timeout=5)
        assert reply.status_code == 200 and reply.json() == []
    finally:
        proc.send_signal(signum)
        code = proc.wait(timeout=10)
    assert code == 0


def test_cli_loads_faults_from_a_file_and_refuses_a_bad_one(tmp_path):
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"errors": {"GET jobs": {"status": 503, "count": 1}}}))
    proc, url = _start("--faults", str(faults))
    try:
        reply = requests.get(url + "/api/public/v1/jobs", headers={"X-SLT-API-KEY": "cli-secret-key"}, timeout=5)
        assert reply.status_code == 503
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    faults.write_text(json.dumps({"errors": {"GET jobs": {"status": "x"}}}))
    bad = subprocess.run([sys.executable, "-m", "skylab_watch.emulator.cli", "--port", "0", "--api-key", "k",
                          "--faults", str(faults)], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "status" in bad.stderr
