"""The HTTP surface (config `http:`): /api/status, /metrics, token rules, actions, the shared callback route."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests
from daemon_helpers import DaemonThread, write_config
from prometheus_client.parser import text_string_to_metric_families
from support import make_image, wait_for

from skylab_watch.cli import main
from skylab_watch.config import load_config
from skylab_watch.config.schema import HttpConfig
from skylab_watch.errors import ConfigError
from skylab_watch.http_surface import HttpSurface, needs_token, refusal, token_matches
from skylab_watch.ledger import Ledger
from skylab_watch.studio.signature import sign_callback
from skylab_watch.web import Request

TOKEN = "t0ken-0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _token_file(tmp: Path, text: str = TOKEN) -> Path:
    path = tmp / "http_token"
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def _config(tmp: Path, emu, **top) -> Path:
    if "http" not in top:
        top["http"] = {"listen": f"127.0.0.1:{_free_port()}", "token_file": str(_token_file(tmp))}
    return write_config(tmp, emu.url, [{"name": "w", "input": tmp / "in", "output": tmp / "out",
                                        "profile": "plain"}], **top)


def _bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_token_is_read_from_token_file_and_a_short_or_missing_one_is_a_config_error(tmp_path, plain_emulator):
    config = load_config(_config(tmp_path, plain_emulator))
    assert config.http is not None and config.http.token == TOKEN and TOKEN not in repr(config.http)
    short = _config(tmp_path, plain_emulator, http={"token_file": str(_token_file(tmp_path, "short"))})
    with pytest.raises(ConfigError, match="http.token_file.*at least 16 bytes"):
        load_config(short)
    missing = _config(tmp_path, plain_emulator, http={"token_file": str(tmp_path / "nope")})
    with pytest.raises(ConfigError, match="http.token_file.*cannot read"):
        load_config(missing)
    assert load_config(_config(tmp_path, plain_emulator, http=None)).http is None


@pytest.mark.parametrize(("host", "method", "needed"), [
    ("127.0.0.1", "GET", False), ("::1", "GET", False), ("localhost", "GET", False),
    ("127.0.0.1", "POST", True), ("0.0.0.0", "GET", True), ("192.168.1.20", "GET", True),
    ("nas.local", "GET", True), ("::", "GET", True),
])
def test_read_only_views_need_the_token_only_off_loopback_and_actions_always(host, method, needed) -> None:
    assert needs_token(host, method) is needed


def test_only_the_exact_bearer_token_passes() -> None:
    def request(auth: str | None) -> Request:
        return Request("GET", "/metrics", {} if auth is None else {"authorization": auth})
    assert token_matches(request(f"Bearer {TOKEN}"), TOKEN)
    assert token_matches(request(f"bearer   {TOKEN} "), TOKEN)
    for auth in (None, "", "Bearer", f"Bearer {TOKEN}x", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"):
        assert not token_matches(request(auth), TOKEN), auth
    off_loopback = refusal("10.0.0.5", TOKEN, request(None))
    assert off_loopback is not None and off_loopback.status == 401
    assert refusal("10.0.0.5", TOKEN, request(f"Bearer {TOKEN}")) is None


def test_a_post_without_the_token_is_refused_and_changes_nothing_and_retry_sends_failed_photos_again(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    failed = ledger.add_photo("w", "bad.jpg", 1, 1, "h", "failed", reason="Studio failed the photo")
    ledger.add_photo("other", "x.jpg", 1, 1, "h2", "failed", reason="no")
    surface = HttpSurface(HttpConfig(listen=("127.0.0.1", 0), token_file=tmp_path / "t", token=TOKEN), ledger,
                          ["w", "other"])
    surface.start()
    base = f"http://127.0.0.1:{surface.address[1]}"
    try:
        refused = [requests.post(f"{base}/api/watches/w/{a}", headers=h, timeout=5).status_code
                   for a in ("pause", "retry") for h in ({}, _bearer("wrong-token-0123456789"))]
        assert refused == [401, 401, 401, 401]
        assert ledger.paused_by_hand() == {} and ledger.get_photo(failed.id).state == "failed"
        retried = requests.post(f"{base}/api/watches/w/retry", headers=_bearer(), timeout=5)
        assert retried.status_code == 200 and "1 failed photo(s)" in retried.json()["message"]
        assert ledger.get_photo(failed.id).state == "ready"
        assert [p.watch for p in ledger.photos_in_state("failed")] == ["other"]
        assert requests.post(f"{base}/api/watches/nobody/pause", headers=_bearer(), timeout=5).status_code == 404
        assert requests.get(f"{base}/api/watches/w/pause", timeout=5).status_code == 405
    finally:
        surface.stop()
        ledger.close()


def test_api_status_is_status_json_and_metrics_match_the_ledger_of_a_daemon_that_delivered(
        tmp_path: Path, plain_emulator, capsys) -> None:
    cfg = _config(tmp_path, plain_emulator)
    with DaemonThread(cfg) as d:
        assert d.daemon.http is not None
        base = f"http://127.0.0.1:{d.daemon.http.address[1]}"
        for i in range(3):
            make_image(tmp_path / "in" / f"p{i}.jpg", seed=i)
        wait_for(lambda: len(list((tmp_path / "out").glob("*.jpg"))) == 3, what="three deliveries")
        wait_for(lambda: not d.ledger.jobs_in_state("open", "closed", "created", "queueing", "queued"),
                 what="the job finished")
        d.ledger.set_notice("credits", "out of credits")
        status = requests.get(f"{base}/api/status", timeout=5)
        metrics = requests.get(f"{base}/metrics", timeout=5)
        assert main(["status", "--config", str(cfg), "--json"]) == 0
        expected = json.loads(capsys.readouterr().out)
        counts, jobs = d.ledger.state_counts(), d.ledger.count_jobs_by_state()
    assert status.status_code == 200 and status.json() == expected
    for answer in (status, metrics):  # they name files and reasons: never sniffed, never cached
        assert (answer.headers["X-Content-Type-Options"], answer.headers["Cache-Control"]) == ("nosniff", "no-store")
    assert expected["watches"]["w"]["done"] == 3
    assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
    photos = {(s.labels["watch"], s.labels["state"]): s.value for s in families["skylab_watch_photos"].samples}
    assert photos == {(w, st): float(n) for w, states in counts.items() for st, n in states.items()}
    assert photos[("w", "done")] == 3.0
    assert {s.labels["state"]: s.value for s in families["skylab_watch_jobs"].samples} == \
        {st: float(n) for st, n in jobs.items()} == {"delivered": 1.0}
    assert [s.labels["key"] for s in families["skylab_watch_notice_active_seconds"].samples] == ["credits"]
    assert 0 <= families["skylab_watch_work_loop_age_seconds"].samples[0].value < 5


def test_pause_and_resume_over_http_are_obeyed_by_the_running_daemon(tmp_path: Path, plain_emulator) -> None:
    cfg = _config(tmp_path, plain_emulator)
    with DaemonThread(cfg) as d:
        assert d.daemon.http is not None
        base = f"http://127.0.0.1:{d.daemon.http.address[1]}/api/watches/w"
        assert requests.post(f"{base}/pause", timeout=5).status_code == 401
        assert requests.post(f"{base}/pause", headers=_bearer(), timeout=5).status_code == 200
        wait_for(lambda: d.daemon.ctx.held_watches == {"w"}, timeout=1.5, what="paused within a second")
        make_image(tmp_path / "in" / "a.jpg")
        assert requests.post(f"{base}/resume", headers=_bearer(), timeout=5).json()["message"] == "w: resumed"
        wait_for(lambda: (tmp_path / "out" / "a.jpg").is_file(), what="the delivery after resume")
        assert d.ledger.paused_by_hand() == {}


def test_the_callback_shares_the_surface_when_it_listens_on_the_same_address(tmp_path: Path, plain_emulator) -> None:
    listen = f"127.0.0.1:{_free_port()}"
    secret = "callback-secret-0123456789"
    cfg = _config(tmp_path, plain_emulator, http={"listen": listen, "token_file": str(_token_file(tmp_path))},
                  callback={"listen": listen, "public_url": "https://example.com/hook", "secret": secret})
    with DaemonThread(cfg) as d:
        assert d.daemon.http is not None and d.daemon.callbacks is not None
        assert d.daemon.callbacks.server is None, "no second server on the same address"
        base = f"http://{listen}"
        body = json.dumps({"id": 1, "status": "completed"})
        now = str(int(time.time()))
        good = requests.patch(f"{base}/hook", data=body, timeout=5, headers={
            "X-Skylab-Timestamp": now, "X-Skylab-Signature": sign_callback(secret, now, body)})
        forged = requests.patch(f"{base}/hook", data=body, timeout=5, headers={
            "X-Skylab-Timestamp": now, "X-Skylab-Signature": sign_callback("wrong-secret-000000", now, body)})
        metrics = requests.get(f"{base}/metrics", timeout=5)
        unknown = requests.get(f"{base}/nothing", timeout=5)
    assert (good.status_code, forged.status_code, metrics.status_code, unknown.status_code) == (200, 401, 200, 404)
