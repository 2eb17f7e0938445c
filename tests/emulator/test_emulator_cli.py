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


def test_cli_starts_with_profiles_backgrounds_and_variants(tmp_path):
    import pyvips

    backdrop = tmp_path / "beach.jpg"
    pyvips.Image.black(64, 48, bands=3).write_to_file(str(backdrop))
    proc, url = _start("--profile", "Packshots", "--profile", "Cut-outs:extract:dual",
                       "--profile", f"Beach:bg={backdrop}", "--profile", "Remote:bg=http://example.invalid:81/sea.jpg",
                       "--variant", "slim-job-photos", "--variant", "jobs-in-front-string")
    try:
        headers = {"X-SLT-API-KEY": "cli-secret-key"}
        profiles = {p["name"]: p for p in requests.get(url + "/api/public/v1/profiles", headers=headers,
                                                       timeout=5).json()}
        state = requests.get(url + "/_emulator/state", timeout=5).json()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert not profiles["Packshots"]["enableExtract"]
    assert profiles["Cut-outs"]["enableExtract"] and profiles["Cut-outs"]["dualFileOutput"]
    beach = profiles["Beach"]
    assert beach["enableExtract"] and beach["replaceBackground"] and beach["photos"][0]["name"] == "beach.jpg"
    assert beach["photos"][0]["originalUrl"].startswith(url)  # a local file is served from the store
    assert profiles["Remote"]["photos"][0]["originalUrl"] == "http://example.invalid:81/sea.jpg"  # a URL as is
    assert state["variants"] == ["slim-job-photos", "jobs-in-front-string"]


@pytest.mark.parametrize("option, complaint", [
    (["--profile", "X:sepia"], "sepia"),
    (["--profile", "X:bg=/no/such/file.jpg"], "/no/such/file.jpg"),
    (["--variant", "nope"], "nope"),
])
def test_cli_refuses_a_bad_profile_or_variant(option, complaint):
    bad = subprocess.run([sys.executable, "-m", "skylab_watch.emulator.cli", "--port", "0", "--api-key", "k",
                          *option], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and complaint in bad.stderr


def test_cli_help_lists_every_variant():
    text = subprocess.run([sys.executable, "-m", "skylab_watch.emulator.cli", "--help"],
                          capture_output=True, text=True, timeout=30).stdout
    from skylab_watch.emulator import VARIANTS

    assert all(name in text for name in VARIANTS) and "--profile" in text
