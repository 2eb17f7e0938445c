"""The official `skylab_studio` 0.0.15 client, unmodified, against the emulator.

It runs in a subprocess with a stub `sentry_sdk` first on PYTHONPATH, so the
client's unconditional `sentry_sdk.init(...)` is recorded and sends nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pyvips
from emulator_helpers import make_image

from skylab_watch.emulator import Emulator

SENTRY_STUB = textwrap.dedent('''
    """Stub: records init() calls and never talks to the network."""
    CALLS = []

    def init(*args, **kwargs):
        CALLS.append(kwargs.get("dsn"))
''')

SCRIPT = textwrap.dedent('''
    import asyncio, json, sys, time
    import sentry_sdk
    from skylab_studio import api as Api

    photo_path, outdir, profile_json = sys.argv[1], sys.argv[2], sys.argv[3]
    api = Api(api_key="official-key")
    profile = api.create_profile(json.loads(profile_json))
    job = api.create_job({"name": "official-" + profile_json, "profile_id": profile["id"]})
    upload = api.upload_job_photo(photo_path, job["id"])
    api.queue_job(job["id"], {})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        job = api.get_job(job["id"])
        if job["status"] == "completed":
            break
        time.sleep(0.05)
    result = asyncio.run(api.download_all_photos(job["photos"], job["profile"], outdir))
    print(json.dumps({"status": job["status"], "upload": upload["upload_response"],
                      "result": result, "sentry_calls": len(sentry_sdk.CALLS)}))
''')


@pytest.fixture(scope="module")
def official_env(tmp_path_factory) -> dict[str, str]:
    """Environment with the sentry stub first on PYTHONPATH."""
    stub_root = tmp_path_factory.mktemp("stub")
    (stub_root / "sentry_sdk").mkdir()
    (stub_root / "sentry_sdk" / "__init__.py").write_text(SENTRY_STUB)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(stub_root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.mark.parametrize("profile, output_name, bands", [
    ({"name": "plain", "output_file_type": "jpg"}, "shot.jpg", 3),
    ({"name": "extract", "enable_extract": True}, "shot.png", 4),
])
def test_official_client_uploads_queues_and_downloads(tmp_path, official_env, profile, output_name, bands):
    photo = tmp_path / "shot.jpg"
    photo.write_bytes(make_image(160, 120, ".jpg"))
    outdir = tmp_path / "out"
    outdir.mkdir()
    with Emulator(api_key="official-key", processing_seconds=0.3) as emu:
        env = dict(official_env, SKYLAB_API_URL=emu.url)
        proc = subprocess.run([sys.executable, "-c", SCRIPT, str(photo), str(outdir), json.dumps(profile)],
                              env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        tagging = [p["tagging"] for p in emu.state()["photos"]]
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "completed" and report["upload"] == 200
    assert report["result"]["success_photos"] == ["shot.jpg"] and report["sentry_calls"] == 1
    assert tagging == ["job=photo&api=true"]
    image = pyvips.Image.new_from_file(str(Path(outdir) / output_name))
    assert image.width > 0 and image.bands == bands
