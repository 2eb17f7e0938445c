"""A result or background image is bounded in pixels from its header, before any decode; doctor and the
config keep Studio's answers and the API key within bounds too."""

from __future__ import annotations

import struct
import time
import zlib

import pytest
import yaml
from daemon_helpers import write_config
from hostile_http import HostileServer, drip, endless, fixed
from stage_helpers import Stage
from support import make_image

from skylab_watch import imaging
from skylab_watch.config import load_config
from skylab_watch.doctor import FAIL, run_checks
from skylab_watch.errors import ConfigError
from skylab_watch.pipeline import jobs, uploader
from skylab_watch.pipeline.deliver import JobLook, deliver_guarded


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """Return a real, valid 1-bit PNG of width x height white pixels: tens of KB that decode to 400 MP."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + b"\xff" * ((width + 7) // 8)
    packer = zlib.compressobj(1)
    idat = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    idat += packer.compress(row * (height % 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return png_bomb()


@pytest.fixture
def stage(tmp_path, plain_emulator):
    s = Stage(tmp_path, plain_emulator.url)
    yield s
    s.close()


def test_a_result_declaring_20000x20000_pixels_is_refused_from_its_header(stage, bomb):
    photo = stage.add_photo()
    job = stage.created_job()
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"
    jobs.queue_uploaded_job(stage.ctx, stage.ledger.get_job(job.id))
    look = JobLook(profile={"outputFileType": "jpg"}, background_stems=[])
    started = time.monotonic()
    with HostileServer(fixed(200, bomb, {"Content-Type": "image/png"})) as store:
        states = [deliver_guarded(stage.ctx, stage.photo(photo), store.url + "/r.png", look) for _ in range(3)]
    assert states == ["delivering", "delivering", "failed"]
    reason = stage.photo(photo).reason
    assert "declares 20000x20000 pixels" in reason and "not decoded" in reason
    assert time.monotonic() - started < 3, "three header reads, never a 400 MP decode"
    assert not list((stage.tmp / "w" / "out").rglob("*.jpg"))


def test_a_background_declaring_too_many_pixels_is_never_decoded(bomb):
    started = time.monotonic()
    with pytest.raises(imaging.TooManyPixels, match="20000x20000"):
        imaging.load_background(bomb)
    assert time.monotonic() - started < 0.5


def test_a_background_within_studios_limits_still_loads(tmp_path):
    image = imaging.load_background(make_image(tmp_path / "bg.jpg", 200, 100).read_bytes())
    assert (image.width, image.height) == (200, 100)


def test_a_result_within_studios_limits_passes_the_header_check(tmp_path):
    assert imaging.check_pixel_budget(make_image(tmp_path / "r.jpg", 640, 480)) == (640, 480)


# ---------------------------------------------------------------- doctor

def _doctor_config(tmp_path, url: str):
    watch = {"name": "w", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain"}
    return load_config(write_config(tmp_path, url, [watch]))


def test_doctor_ends_within_its_cap_against_a_dripping_api(tmp_path):
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"
    with HostileServer(drip(head, every=0.2)) as api:
        started = time.monotonic()
        findings = run_checks(_doctor_config(tmp_path, api.url), inotify_limit=None, max_wait_seconds=1.5)
    api_finding = next(f for f in findings if f.check == "api")
    assert api_finding.verdict == FAIL and "within 1.5 s" in api_finding.detail
    assert time.monotonic() - started < 8, "the drip alone would last 16 s a try"


def test_doctor_reports_an_endless_api_answer_without_reading_it_all(tmp_path):
    with HostileServer(endless()) as api:
        findings = run_checks(_doctor_config(tmp_path, api.url), inotify_limit=None, max_wait_seconds=5)
    api_finding = next(f for f in findings if f.check == "api")
    assert api_finding.verdict == FAIL and "8 MiB" in api_finding.detail


# ---------------------------------------------------------------- plain http

def _studio_config(tmp_path, url: str, **studio: object):
    path = write_config(tmp_path, url, [{"name": "w", "input": tmp_path / "in", "output": tmp_path / "out",
                                         "profile": "plain"}])
    doc = yaml.safe_load(path.read_text())
    doc["studio"].update(studio)
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_plain_http_api_url_on_another_host_is_refused_naming_the_key(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_studio_config(tmp_path, "http://studio.example.com"))
    assert "studio.api_url" in str(err.value) and "allow_insecure_http" in str(err.value)


def test_a_plain_http_api_url_is_accepted_when_explicitly_allowed(tmp_path):
    config = load_config(_studio_config(tmp_path, "http://10.0.0.5:8765", allow_insecure_http=True))
    assert config.studio.allow_insecure_http and config.studio.api_url == "http://10.0.0.5:8765"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765",
                                 "https://studio.example.com"])
def test_loopback_http_and_https_need_no_permission(tmp_path, url):
    assert load_config(_studio_config(tmp_path, url)).studio.api_url == url
