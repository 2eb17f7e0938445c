"""The status page `/` over real HTTP: what it shows, escaping, and who may press its buttons.

A real ledger and the real HTTP surface (waitress on an ephemeral port); requests as the client.
The browser itself is driven in test_status_page_browser.py.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from skylab_watch.config.schema import HttpConfig
from skylab_watch.http_surface import HttpSurface
from skylab_watch.ledger import Ledger
from skylab_watch.web import Request
from skylab_watch.web_session import COOKIE, MAX_REFUSALS_A_MINUTE, SESSION_IDLE_SECONDS, Sessions, SignInThrottle

TOKEN = "page-t0ken-0123456789abcdef"
HOSTILE = '<script>alert(1)</script>\n<img src=x onerror=alert(2)>\u202egpj.exe'


class Page:
    """A running surface over a ledger with one failed photo in `w` and one in `other`."""

    def __init__(self, tmp: Path, host: str = "127.0.0.1", watches: tuple[str, ...] = ("w", "other")) -> None:
        self.ledger = Ledger(tmp / "ledger.sqlite3")
        self.failed = self.ledger.add_photo("w", "bad.jpg", 1, 1, "h", "failed", reason="Studio failed the job")
        self.ledger.add_photo("other", "x.jpg", 1, 1, "h2", "failed", reason="no")
        self.surface = HttpSurface(HttpConfig(listen=(host, 0), token_file=tmp / "t", token=TOKEN), self.ledger,
                                   list(watches))
        self.surface.start()
        self.base = f"http://127.0.0.1:{self.surface.address[1]}"

    def signed_in(self) -> requests.Session:
        session = requests.Session()
        answer = session.post(f"{self.base}/session", data={"token": TOKEN}, allow_redirects=False, timeout=5)
        assert answer.status_code == 303 and answer.headers["Location"] == "/"
        return session

    def csrf(self, session: requests.Session) -> str:
        return re.findall(r'name="csrf" value="([0-9a-f]+)"', session.get(f"{self.base}/", timeout=5).text)[0]

    def post(self, path: str, session: requests.Session | None = None, **kwargs) -> requests.Response:
        return (session or requests).post(f"{self.base}{path}", allow_redirects=False, timeout=5, **kwargs)

    def close(self) -> None:
        self.surface.stop()
        self.ledger.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    running = Page(tmp_path)
    yield running
    running.close()


def test_the_page_is_phone_ready_self_refreshing_html_showing_counts_failures_and_notices(page: Page) -> None:
    page.ledger.add_photo("w", "ok.jpg", 1, 1, "h3", "done")
    page.ledger.set_notice("credits", "Studio says the account is out of credits")
    page.ledger.pause_watch("other", "lunch break", 0)
    answer = requests.get(f"{page.base}/", timeout=5)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "text/html; charset=utf-8"
    body = answer.text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in body
    assert '<meta http-equiv="refresh" content="10">' in body
    assert "<script" not in body and "src=" not in body, "no script and no external asset"
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert re.search(r'data-watch="w">.*?data-count="done">1<.*?data-count="failed">1<', body, re.S)
    assert "bad.jpg" in body and "Studio failed the job" in body
    assert "out of credits" in body and "paused by hand since" in body and "lunch break" in body
    assert 'name="csrf"' not in body and 'action="/session"' in body, "not signed in: a sign-in form, no buttons"


def test_a_hostile_file_name_and_reason_are_shown_as_text_never_as_markup(page: Page) -> None:
    page.ledger.add_photo("w", HOSTILE, 1, 1, "h4", "rejected", reason=f"cannot read {HOSTILE}: <b>bad</b>")
    body = requests.get(f"{page.base}/", timeout=5).text
    assert "<script>" not in body and "<img" not in body and "<b>bad" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\n&lt;img src=x onerror=alert(2)&gt;\\u202egpj.exe" in body
    assert "\u202e" not in body and "&lt;b&gt;bad&lt;/b&gt;" in body


def test_signing_in_sets_a_strict_httponly_cookie_that_is_not_the_token_and_a_wrong_token_is_refused(
        page: Page) -> None:
    wrong = page.post("/session", data={"token": "not-the-token-0123456789"})
    assert wrong.status_code == 401 and "Set-Cookie" not in wrong.headers
    assert "That token is not right" in wrong.text
    right = page.post("/session", data={"token": TOKEN})
    assert right.status_code == 303 and right.headers["Location"] == "/"
    cookie = right.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/" in cookie and TOKEN not in cookie and f"Max-Age={SESSION_IDLE_SECONDS}" in cookie
    session = page.signed_in()
    assert 'name="csrf"' in session.get(f"{page.base}/", timeout=5).text, "signed in: the buttons are there"
    out = page.post("/session/end", session)
    assert out.status_code == 303 and "Max-Age=0" in out.headers["Set-Cookie"]


def _altered(secret: str) -> str:
    """`secret` with its last character changed (to a "0" unless it already was one: then to a "1")."""
    return secret[:-1] + ("1" if secret.endswith("0") else "0")


def test_a_form_action_without_session_or_with_a_wrong_csrf_field_is_refused_and_changes_nothing(
        page: Page) -> None:
    session = page.signed_in()
    csrf = page.csrf(session)
    refused = [
        page.post("/watches/w/pause").status_code,                                   # nothing at all
        page.post("/watches/w/pause", data={"csrf": csrf}).status_code,              # field without the cookie
        page.post("/watches/w/retry", session).status_code,                          # cookie without the field
        page.post("/watches/w/retry", session, data={"csrf": _altered(csrf)}).status_code,
        page.post("/watches/w/pause", session, data={"csrf": csrf},                  # not a form
                  headers={"Content-Type": "text/plain"}).status_code,
        page.post("/watches/w/pause", session, data={"csrf": csrf, "pad": "x" * 5000}).status_code,
        page.post("/watches/w/pause", headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code,
    ]
    assert refused == [401, 401, 403, 403, 403, 403, 401]
    assert page.ledger.paused_by_hand() == {} and page.ledger.get_photo(page.failed.id).state == "failed"
    assert requests.get(f"{page.base}/watches/w/pause", timeout=5).status_code == 405, "POST only"


def test_a_form_action_with_session_and_csrf_or_with_the_bearer_token_acts_and_redirects_to_the_page(
        page: Page) -> None:
    session = page.signed_in()
    csrf = page.csrf(session)
    paused = page.post("/watches/w/pause", session, data={"csrf": csrf})
    assert (paused.status_code, paused.headers["Location"]) == (303, "/")
    assert set(page.ledger.paused_by_hand()) == {"w"}
    retried = page.post("/watches/w/retry", session, data={"csrf": csrf})
    assert retried.status_code == 303 and page.ledger.get_photo(page.failed.id).state == "ready"
    assert [p.watch for p in page.ledger.photos_in_state("failed")] == ["other"], "only that watch's photos"
    resumed = page.post("/watches/w/resume", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resumed.status_code == 303 and page.ledger.paused_by_hand() == {}


def test_a_restarted_surface_does_not_accept_the_old_session_cookie(tmp_path: Path) -> None:
    first = Page(tmp_path / "a")
    try:
        session = first.signed_in()
        cookie, csrf = session.cookies[COOKIE], first.csrf(session)
    finally:
        first.close()
    second = Page(tmp_path / "b")
    try:
        answer = second.post("/watches/w/pause", data={"csrf": csrf}, headers={"Cookie": f"{COOKIE}={cookie}"})
        assert answer.status_code == 401 and second.ledger.paused_by_hand() == {}
    finally:
        second.close()


def test_off_loopback_the_page_needs_the_token_or_a_session_and_shows_only_the_sign_in_form(tmp_path: Path) -> None:
    exposed = Page(tmp_path, host="0.0.0.0")  # reached over 127.0.0.1, but configured for every address
    try:
        anonymous = requests.get(f"{exposed.base}/", timeout=5)
        assert anonymous.status_code == 401 and 'action="/session"' in anonymous.text
        assert "bad.jpg" not in anonymous.text and "data-watch" not in anonymous.text
        bearer = requests.get(f"{exposed.base}/", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert bearer.status_code == 200 and "bad.jpg" in bearer.text
        session = exposed.signed_in()
        assert session.get(f"{exposed.base}/", timeout=5).status_code == 200
        assert requests.get(f"{exposed.base}/api/status", timeout=5).status_code == 401
    finally:
        exposed.close()


def test_the_token_cookie_and_csrf_value_never_reach_the_log(page: Page, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="skylab_watch")
    page.post("/session", data={"token": TOKEN[:-1] + "X"})
    session = page.signed_in()
    csrf = page.csrf(session)
    page.post("/watches/w/pause", session, data={"csrf": csrf})
    page.post("/watches/w/resume", session, data={"csrf": "f" * 64})
    page.post("/watches/w/retry", headers={"Authorization": f"Bearer {TOKEN}"})
    assert "signed in" in caplog.text and "refused" in caplog.text and "paused" in caplog.text
    for secret in (TOKEN, TOKEN[:-1] + "X", session.cookies[COOKIE], csrf):
        assert secret not in caplog.text


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8780", "192.168.1.20", "localhost.evil.com"])
def test_on_loopback_a_request_naming_another_host_needs_the_token_so_dns_rebinding_reads_nothing(
        page: Page, host: str) -> None:
    # A page on attacker.example whose name was re-pointed at 127.0.0.1 reaches this port with its own Host.
    for path in ("/", "/api/status", "/metrics"):
        answer = requests.get(f"{page.base}{path}", headers={"Host": host}, timeout=5)
        assert answer.status_code == 401 and "bad.jpg" not in answer.text, path
    bearer = requests.get(f"{page.base}/api/status", headers={"Host": host, "Authorization": f"Bearer {TOKEN}"},
                          timeout=5)
    assert bearer.status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST"])
def test_on_loopback_a_request_naming_this_machine_reads_without_the_token(page: Page, host: str) -> None:
    named = host.format(port=page.surface.address[1])
    for path in ("/", "/api/status", "/metrics"):
        assert requests.get(f"{page.base}{path}", headers={"Host": named}, timeout=5).status_code == 200, path


def test_the_page_and_metrics_show_the_jobs_studio_has_in_front_and_the_last_hours_deliveries(page: Page) -> None:
    job = page.ledger.reserve_job("w", "w-20240101-0900-0001", 1)
    for state in ("closed", "creating", "created", "queueing"):
        page.ledger.update_job(job.id, state=state)
    page.ledger.update_job(job.id, state="queued", jobs_in_front=7, studio_status="queued")
    delivered = page.ledger.add_photo("w", "ok.jpg", 1, 1, "h3", "done")
    page.ledger.update_photo(delivered.id, delivered_at=time.time() - 60)
    page.ledger.pause_watch("other", "lunch break", 0)
    body = requests.get(f"{page.base}/", timeout=5).text
    row = re.search(r'<table id="jobs">.*?<tr><td>w</td><td>w-20240101-0900-0001</td><td>queued</td>'
                    r'<td>queued</td><td>0</td><td>(\d+)</td></tr>', body, re.S)
    assert row is not None and row.group(1) == "7", "the job, its state and the jobs in front"
    card = re.search(r'data-watch="w">.*?<p class="throughput muted">([^<]*)</p>', body, re.S)
    assert card is not None and card.group(1).startswith("1 delivered in the last hour")
    assert card.group(1).endswith("7 job(s) in front at Studio")
    metrics = {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(
        requests.get(f"{page.base}/metrics", timeout=5).text) for s in family.samples}
    assert metrics[("skylab_watch_jobs_in_front", (("job", "w-20240101-0900-0001"), ("watch", "w")))] == 7
    assert metrics[("skylab_watch_jobs", (("state", "queued"),))] == 1
    assert metrics[("skylab_watch_watch_paused_seconds", (("watch", "other"),))] > 1e9, "paused at time 0"


class Clock:
    """Monotonic time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _with_cookie(value: str) -> Request:
    return Request("GET", "/", {"cookie": f"{COOKIE}={value}"})


def test_each_sign_in_is_its_own_session_and_signing_out_ends_it_even_for_a_copied_cookie(page: Page) -> None:
    first, second = page.signed_in(), page.signed_in()
    assert first.cookies[COOKIE] != second.cookies[COOKIE], "a fresh random id per sign-in"
    first_csrf, second_csrf = page.csrf(first), page.csrf(second)
    assert first_csrf != second_csrf, "the CSRF field is the session's own"
    crossed = page.post("/watches/w/pause", second, data={"csrf": first_csrf})
    assert crossed.status_code == 403 and page.ledger.paused_by_hand() == {}
    copied = {"Cookie": f"{COOKIE}={first.cookies[COOKIE]}"}
    assert page.post("/session/end", first).status_code == 303
    replayed = page.post("/watches/w/pause", data={"csrf": first_csrf}, headers=copied)
    assert replayed.status_code == 401 and page.ledger.paused_by_hand() == {}, "signed out here, not only there"
    assert page.post("/watches/w/pause", second, data={"csrf": second_csrf}).status_code == 303, "others go on"
    assert set(page.ledger.paused_by_hand()) == {"w"}


def test_a_session_left_idle_too_long_is_over_and_beyond_the_limit_the_least_recently_used_goes() -> None:
    clock = Clock()
    sessions = Sessions(TOKEN, clock=clock, idle_seconds=100, max_sessions=2)
    kept, idle = sessions.start(), sessions.start()
    clock.now += 60
    assert sessions.signed_in(_with_cookie(kept)), "used: its idle time starts again"
    clock.now += 60
    assert sessions.signed_in(_with_cookie(kept)) and not sessions.signed_in(_with_cookie(idle)), "idle 120 s > 100"
    newer, newest = sessions.start(), sessions.start()
    assert not sessions.signed_in(_with_cookie(kept)), "the least recently used of three went"
    assert sessions.signed_in(_with_cookie(newer)) and sessions.signed_in(_with_cookie(newest))
    assert not sessions.signed_in(_with_cookie("")) and not sessions.signed_in(_with_cookie("made-up"))


def test_wrong_tokens_are_logged_once_then_counted_and_a_burst_closes_sign_ins_with_429(page: Page, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="skylab_watch")
    wrong = [page.post("/session", data={"token": f"guess-{i}"}).status_code for i in range(MAX_REFUSALS_A_MINUTE)]
    assert wrong == [401] * MAX_REFUSALS_A_MINUTE
    closed = page.post("/session", data={"token": TOKEN})
    assert closed.status_code == 429 and "Set-Cookie" not in closed.headers, "closed even to the right token"
    assert 0 < int(closed.headers["Retry-After"]) <= 60
    lines = [r.getMessage() for r in caplog.records if "sign-in" in r.getMessage()]
    assert len(lines) == 1 and "refused a sign-in" in lines[0], "one line, not a flood"


def test_refused_sign_ins_after_the_first_are_one_counted_line_a_minute_and_the_lock_lifts_with_the_minute() -> None:
    clock = Clock()
    throttle = SignInThrottle(clock=clock, limit=3)
    lines = [throttle.refused("10.0.0.9", "wrong token") for _ in range(4)]
    assert lines[0] == "http: refused a sign-in to the status page from 10.0.0.9: wrong token"
    assert lines[1:] == [None, None, None] and throttle.closed_for() == 60
    clock.now += 30
    assert throttle.closed_for() == 30 and throttle.refused("10.0.0.9", "too many") is None
    clock.now += 30
    assert throttle.closed_for() == 0, "the minute is over"
    assert throttle.refused("10.0.0.7", "wrong token") == (
        "http: 5 more refused sign-ins to the status page in the last minute, the latest from 10.0.0.7: wrong token")
    assert throttle.closed_for() == 0, "one refusal in the new minute"


@pytest.mark.parametrize("host", ["0.0.0.0", "loopback-foreign-host"])
def test_without_the_token_every_path_gets_the_same_401_so_watch_names_cannot_be_probed(tmp_path: Path,
                                                                                         host: str) -> None:
    exposed = Page(tmp_path, host="127.0.0.1" if host == "loopback-foreign-host" else host)
    headers = {"Host": "attacker.example"} if host == "loopback-foreign-host" else {}
    probes = [("POST", "/watches/w/pause"), ("POST", "/watches/nobody/pause"), ("GET", "/watches/w/pause"),
              ("POST", "/api/watches/w/retry"), ("POST", "/api/watches/nobody/retry"), ("GET", "/nothing"),
              ("GET", "/api/status"), ("DELETE", "/"), ("POST", "/watches/nobody/pause/")]
    try:
        answers = [requests.request(method, f"{exposed.base}{path}", headers=headers, timeout=5)
                   for method, path in probes]
        bodies = {(a.status_code, a.text) for a in answers}
        assert len(bodies) == 1 and next(iter(bodies))[0] == 401, "one and the same 401"
        known = requests.post(f"{exposed.base}/watches/w/pause", headers={**headers, **_bearer()}, timeout=5,
                              allow_redirects=False)
        unknown = requests.post(f"{exposed.base}/watches/nobody/pause", headers={**headers, **_bearer()}, timeout=5,
                              allow_redirects=False)
        assert (known.status_code, unknown.status_code) == (303, 404), "with the token, routes answer"
        assert exposed.post("/session", data={"token": TOKEN}, headers=headers).status_code == 303, "sign-in open"
    finally:
        exposed.close()


def test_probing_without_the_token_is_one_log_line_a_minute_not_one_a_request(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="skylab_watch")
    exposed = Page(tmp_path, host="0.0.0.0")
    try:
        paths = ["/api/status", "/metrics", "/watches/w/pause", "/api/watches/w/retry", "/nothing"] * 6
        codes = {requests.post(f"{exposed.base}{path}", timeout=5).status_code for path in paths}
    finally:
        exposed.close()
    assert codes == {401}
    lines = [r.getMessage() for r in caplog.records if "without the token" in r.getMessage()]
    assert lines == ["http: refused a request without the token from 127.0.0.1: POST /api/status"], lines


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def _buttons(body: str, watch: str) -> list[str]:
    card = re.search(rf'data-watch="{watch}">(.*?)</section>', body, re.S)
    assert card is not None, watch
    return re.findall(r'data-action="(\w+)"', card.group(1))


@pytest.fixture
def three(tmp_path: Path) -> Iterator[Page]:
    """A page of w (failed photos), other (failed, paused by hand) and calm (nothing at all)."""
    running = Page(tmp_path, watches=("w", "other", "calm"))
    running.ledger.pause_watch("other", "lunch break", 0)
    yield running
    running.close()


def test_each_watch_shows_only_the_buttons_that_would_act(three: Page) -> None:
    body = three.signed_in().get(f"{three.base}/", timeout=5).text
    assert _buttons(body, "w") == ["retry", "pause"], "failed photos, not paused"
    assert _buttons(body, "other") == ["retry", "resume"], "paused by hand"
    assert _buttons(body, "calm") == ["pause"], "nothing failed, not paused"


def test_a_watch_held_by_the_credits_notice_says_so_instead_of_idle(three: Page) -> None:
    three.ledger.set_notice("credits", "Studio account out of credits (402); uploads and queueing paused")
    body = requests.get(f"{three.base}/", timeout=5).text
    state = re.search(r'data-watch="calm">.*?<span class="state (\w+)">([^<]*)</span>', body, re.S)
    assert state is not None and state.group(1) == "paused", "not idle"
    assert state.group(2).startswith("held since") and "out of credits" in state.group(2)
    assert "paused by hand since" in body, "a hand pause still says so first"


def test_a_failure_reason_does_not_repeat_the_watch_and_path_its_line_shows(three: Page) -> None:
    three.ledger.add_photo("w", "sub/p.jpg", 1, 1, "h5", "failed", reason="w: sub/p.jpg: Studio said <no>")
    three.ledger.add_photo("w", "q.jpg", 1, 1, "h6", "failed", reason="other: q.jpg: not this line's prefix")
    body = requests.get(f"{three.base}/", timeout=5).text
    assert "w: sub/p.jpg: Studio said" not in body
    assert '<span class="path">sub/p.jpg</span><br><span class="reason">Studio said &lt;no&gt;</span>' in body
    assert "other: q.jpg: not this line&#x27;s prefix" in body, "only the line's own watch and path are stripped"
