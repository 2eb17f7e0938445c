"""Secrets stay secret end to end (issue 11): debug logs of a real run hold no presigned query value,
`doctor` never prints a key that a server echoes back, a key too short to be real is refused, and a
file holding a key that others can read gets a warning naming the file and the fix.

Everything is real: the daemon as a process against the emulator, a small hostile HTTP server, files
with real mode bits (checked as bits, so the verdicts hold when the suite runs as root).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from support import API_KEY, make_image, plain_studio
from daemon_helpers import start_process, write_config

from skylab_watch.cli import main
from skylab_watch.studio import StudioClient, StudioError
from skylab_watch.studio.retry import RetryPolicy
from skylab_watch.config import load_config
from skylab_watch.errors import ConfigError

CALLBACK_SECRET = "callback-secret-0123456789abcdef"


def _watch(tmp: Path) -> dict:
    return {"name": "w", "input": tmp / "in" / "w", "output": tmp / "out" / "w", "profile": "plain"}


# --- presigned links in debug logs ---------------------------------------------------

def test_debug_logs_of_a_real_upload_and_download_hold_no_presigned_query_value(tmp_path):
    with plain_studio() as emu:
        cfg = write_config(tmp_path, emu.url, [_watch(tmp_path)])
        make_image(tmp_path / "in" / "w" / "a.jpg")
        proc = start_process(cfg, "--once", "--log-level", "debug")
        code = proc.wait(60)
    log = (tmp_path / "daemon.log").read_text(errors="replace")
    assert code == 0, log
    assert (tmp_path / "out" / "w" / "a.jpg").is_file(), "the photo went up and its result came down"
    # The links were logged (the upload PUT, the result GET, and the answers that hand them out)...
    assert re.search(r"> PUT http://\S+/_store/\S+\?\S*X-Amz-Signature=\[redacted\]", log)
    assert re.search(r"> GET http://\S+/_store/retouched/\S+\?\S*X-Amz-Signature=\[redacted\]", log)
    assert re.search(r'"url": ?"http://\S+\?\S*X-Amz-Signature=\[redacted\]', log)
    # ...and not one value of their query strings is there.
    values = re.findall(r"[?&]X-Amz-[A-Za-z-]+=([^&\s\"'\\]*)", log)
    assert len(values) >= 6 and set(values) == {"[redacted]"}
    assert API_KEY not in log


# --- doctor against a server that echoes the key --------------------------------------

@pytest.fixture(params=[401, 500], ids=["401", "500"])
def echoing_server(request) -> Iterator[str]:
    """A server answering every call with `status` and a body that repeats the X-SLT-API-KEY it got."""
    status = request.param

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            key = self.headers.get("X-SLT-API-KEY", "")
            body = json.dumps({"message": f"the key {key} is not valid here", "key": key}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status == 401 else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_doctor_never_prints_a_key_the_server_echoes_back(echoing_server, tmp_path, capsys, as_json):
    cfg = write_config(tmp_path, echoing_server, [_watch(tmp_path)])
    code = main(["doctor", "--config", str(cfg)] + (["--json"] if as_json else []))
    out, err = capsys.readouterr()
    assert code == 1, out
    api = [f for f in json.loads(out) if f["check"] == "api"][0]["detail"] if as_json else out
    assert "is not valid here" in api, "the server's words are shown..."
    assert "the key [redacted] is not valid here" in api, "...with the key masked"
    assert API_KEY not in out + err


def test_an_error_answer_echoing_the_key_never_puts_it_in_the_studio_error(echoing_server):
    quick = RetryPolicy(max_attempts=2, initial_seconds=0.01, max_backoff_seconds=0.01)
    with StudioClient(echoing_server, API_KEY, retry=quick) as client, pytest.raises(StudioError) as caught:
        client.list_jobs()
    assert "is not valid here" in str(caught.value) and API_KEY not in str(caught.value)


# --- an API key too short to be real -----------------------------------------------------

@pytest.mark.parametrize("where", ["inline", "env"])
def test_an_api_key_too_short_to_be_real_is_refused_without_echoing_it(tmp_path, where):
    cfg = write_config(tmp_path, "http://127.0.0.1:9", [_watch(tmp_path)])
    inline = f"  api_key: {API_KEY}\n"
    assert inline in cfg.read_text()
    cfg.write_text(cfg.read_text().replace(inline, "  api_key: Zq7\n" if where == "inline" else ""))
    env = {"SKYLAB_API_KEY": "Zq7"} if where == "env" else {}
    with pytest.raises(ConfigError) as caught:
        load_config(cfg, env=env)
    report = str(caught.value)
    assert "At 'studio.api_key': the API key" in report and "is 3 character(s) long" in report
    assert ("$SKYLAB_API_KEY" in report) == (where == "env")
    assert "Zq7" not in report


# --- files holding a key that others can read ------------------------------------------

def _config_with_files(tmp: Path, key_mode: int, secret_mode: int) -> Path:
    """Write a config reading the key and the callback secret from files with the given modes."""
    key_file, secret_file = tmp / "api_key", tmp / "callback_secret"
    key_file.write_text(API_KEY + "\n")
    secret_file.write_text(CALLBACK_SECRET + "\n")
    key_file.chmod(key_mode)
    secret_file.chmod(secret_mode)
    return write_config(tmp, "http://127.0.0.1:9", [_watch(tmp)],
                        studio={"api_url": "http://127.0.0.1:9", "api_key_file": str(key_file)},
                        callback={"listen": "127.0.0.1:8790", "public_url": "http://127.0.0.1:9/cb",
                                  "secret_file": str(secret_file)})


def test_a_config_holding_the_key_inline_that_every_user_can_read_gets_a_warning(tmp_path):
    cfg = write_config(tmp_path, "http://127.0.0.1:9", [_watch(tmp_path)])
    cfg.chmod(0o644)
    [warning] = load_config(cfg).warnings
    assert str(warning) == (f"At 'studio.api_key': the API key is inline in {cfg}: every user can read it "
                            f"(mode 0644); run `chmod 600 {cfg}`, owned by the user the daemon runs as "
                            "(or move it to its own file, see *_file)")


def test_a_config_holding_the_key_inline_readable_by_its_group_only_gets_no_warning(tmp_path):
    cfg = write_config(tmp_path, "http://127.0.0.1:9", [_watch(tmp_path)])
    cfg.chmod(0o640)  # root:skylab-watch 640 is the documented way to share it with the daemon
    assert load_config(cfg).warnings == ()


def test_key_and_secret_files_readable_by_group_or_others_get_a_warning_each(tmp_path):
    cfg = _config_with_files(tmp_path, key_mode=0o640, secret_mode=0o604)
    cfg.chmod(0o644)  # no secret inline: the config itself may be read by anyone
    warnings = {w.path: str(w) for w in load_config(cfg).warnings}
    assert set(warnings) == {"studio.api_key_file", "callback.secret_file"}
    assert (f"{tmp_path / 'api_key'} holds the API key: its group can read it (mode 0640); "
            f"run `chmod 600 {tmp_path / 'api_key'}`") in warnings["studio.api_key_file"]
    assert "callback_secret holds the callback secret: every user can read it (mode 0604)" \
        in warnings["callback.secret_file"]


def test_key_and_secret_files_only_their_owner_can_read_get_no_warning(tmp_path):
    cfg = _config_with_files(tmp_path, key_mode=0o600, secret_mode=0o400)
    assert load_config(cfg).warnings == ()


def test_check_config_and_doctor_show_the_warning(tmp_path, capsys):
    cfg = _config_with_files(tmp_path, key_mode=0o644, secret_mode=0o600)
    assert main(["check-config", "--config", str(cfg)]) == 0
    out, err = capsys.readouterr()
    assert out.rstrip().endswith("configuration OK")
    assert f"warning: At 'studio.api_key_file': {tmp_path / 'api_key'} holds the API key" in err
    main(["doctor", "--config", str(cfg), "--json"])
    secrets = [f for f in json.loads(capsys.readouterr().out) if f["check"] == "secrets"]
    assert [f["verdict"] for f in secrets] == ["warn"]
    assert secrets[0]["fix"].startswith(f"run `chmod 600 {tmp_path / 'api_key'}`")
