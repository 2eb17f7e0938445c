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


EVERY_CALL_SCRIPT = textwrap.dedent('''
    import asyncio, json, os, sys, time
    from skylab_studio import api as Api

    photo_path, background_path, outdir, secret, timestamp, body, signature = sys.argv[1:8]
    api = Api(api_key="official-key")
    out = {}
    plain = api.create_profile({"name": "plain"})
    out["update_profile"] = api.update_profile(plain["id"], {"description": "changed"})["description"]
    out["list_profiles"] = [p["name"] for p in api.list_profiles()]
    beach = api.create_profile({"name": "beach", "enable_extract": True, "replace_background": True})
    out["upload_profile_photo"] = api.upload_profile_photo(background_path, beach["id"])["upload_response"]
    out["get_profile"] = [p["name"] for p in api.get_profile(beach["id"])["photos"]]
    job = api.create_job({"name": "every-call", "profile_id": beach["id"]})
    out["update_job"] = api.update_job(job["id"], {"name": "every-call-2"})["name"]
    out["get_job_by_name"] = api.get_job_by_name({"name": "every-call-2"})["id"] == job["id"]
    upload = api.upload_job_photo(photo_path, job["id"])
    extra = api.upload_job_photo(background_path, job["id"])
    out["delete_photo"] = api.delete_photo(extra["photo"]["id"])["id"] == extra["photo"]["id"]
    out["get_job_photos_id"] = [p["name"] for p in api.get_job_photos("id", job["id"])]
    out["get_job_photos_name"] = [p["name"] for p in api.get_job_photos("name", "every-call-2")]
    out["create_answer_status"] = upload["photo"].get("status")
    api.queue_job(job["id"], {})
    out["fetch_jobs_in_front"] = api.fetch_jobs_in_front(job["id"])
    deadline = time.monotonic() + 15
    while api.get_job(job["id"])["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.05)
    out["get_photo"] = api.get_photo(upload["photo"]["id"])["retouchedUrl"].startswith("http")
    out["download_photo"] = asyncio.run(api.download_photo(upload["photo"]["id"], outdir))[1]
    out["outputs"] = sorted(os.listdir(outdir))
    other = api.create_job({"name": "to-cancel", "profile_id": plain["id"]})
    out["cancel_job"] = api.cancel_job(other["id"])["status"]
    out["delete_job"] = api.delete_job(other["id"])["id"] == other["id"]
    out["list_jobs"] = [j["name"] for j in api.list_jobs()]
    out["validate_hmac_headers"] = api.validate_hmac_headers(secret, body, timestamp, signature)
    print(json.dumps(out))
''')


def test_official_client_every_public_call_works_against_the_default_emulator(tmp_path, official_env):
    from skylab_watch.emulator import sign_callback

    photo, background = tmp_path / "shot.jpg", tmp_path / "sand.jpg"
    photo.write_bytes(make_image(160, 120, ".jpg"))
    background.write_bytes(make_image(80, 60, ".jpg"))
    outdir = tmp_path / "out"
    outdir.mkdir()
    body = json.dumps({"id": 1, "status": "completed"})
    with Emulator(api_key="official-key", processing_seconds=0.3) as emu:
        env = dict(official_env, SKYLAB_API_URL=emu.url)
        args = [str(photo), str(background), str(outdir), "hook-secret", "1700000000", body,
                sign_callback("hook-secret", "1700000000", body)]
        proc = subprocess.run([sys.executable, "-c", EVERY_CALL_SCRIPT, *args], env=env, capture_output=True,
                              text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {
        "update_profile": "changed", "list_profiles": ["plain"], "upload_profile_photo": 200,
        "get_profile": ["sand.jpg"], "update_job": "every-call-2", "get_job_by_name": True,
        "delete_photo": True, "get_job_photos_id": ["shot.jpg"], "get_job_photos_name": ["shot.jpg"],
        "create_answer_status": None, "fetch_jobs_in_front": {"jobsInFront": 0}, "get_photo": True,
        "download_photo": True, "outputs": ["shot.jpg"], "cancel_job": "cancelled", "delete_job": True,
        "list_jobs": ["every-call-2"], "validate_hmac_headers": True,
    }
