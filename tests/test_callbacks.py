"""The callback receiver against hostile and broken clients: real waitress over loopback, a real ledger.

Every case runs in both arrangements the daemon knows (the `receiving` fixture):
- "own": the callback on a listener of its own (no `http:`, or `callback.listen` differs from `http.listen`);
- "shared": the callback route on the HTTP surface (`callback.listen` equals `http.listen`), beside its
  read-only views (/api/status, /metrics) and its token-guarded actions. There the cases also check that
  those views keep answering while the callback path is abused.

Malformed requests are written on raw sockets, since no HTTP client sends them.
Limits are shrunk (idle timeout under a second) so that the whole file runs in
a few seconds.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, ContextManager, Iterator

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support import wait_for

from skylab_watch.callbacks import CallbackReceiver
from skylab_watch.config.schema import HttpConfig
from skylab_watch.http_surface import HttpSurface
from skylab_watch.ledger import Ledger
from skylab_watch.studio import sign_callback
from skylab_watch.web import WebLimits

SECRET = "callback-secret-for-tests"
TOKEN = "surface-token-0123456789abcdef"
PATH = "/skylab/cb"
WATCH = "w"
BODY = json.dumps({"id": 42, "status": "completed"})
FAST = WebLimits(idle_timeout=0.3)
VIEWS = ("/api/status", "/metrics")
"""The surface's read-only views: on loopback they answer GET without the token."""


@dataclass
class Served:
    """The callback route started in one arrangement: its receiver, the surface carrying it (shared), what it woke."""

    receiver: CallbackReceiver
    surface: HttpSurface | None
    ledger: Ledger
    woken: list[int | None] = field(default_factory=list)

    @property
    def address(self) -> tuple[str, int]:
        """Where the callback route listens: the surface's address when shared, else the receiver's own."""
        return self.surface.address if self.surface is not None else self.receiver.address

    def stop(self) -> None:
        """Stop whichever server carries the callback route."""
        if self.surface is not None:
            self.surface.stop()
        self.receiver.stop()


@contextmanager
def serving(ledger_path: Path, limits: WebLimits = FAST, *, shared: bool) -> Iterator[Served]:
    """Yield the callback route started on a free port, as the daemon wires it: shared with the surface or not."""
    ledger = Ledger(ledger_path)
    if not ledger.state_counts():  # one photo on record, so that the surface's views have a count to show
        ledger.add_photo(WATCH, "a.jpg", 1, 1, "h", "failed", reason="Studio failed the photo")
    woken: list[int | None] = []
    receiver = CallbackReceiver("127.0.0.1", 0, SECRET, on_job=woken.append, first_sight=ledger.first_sight_of_callback,
                                path=PATH, limits=limits, own_server=not shared)
    surface = None
    if shared:
        config = HttpConfig(listen=("127.0.0.1", 0), token_file=ledger_path.with_name("http_token"), token=TOKEN)
        surface = HttpSurface(config, ledger, [WATCH], extra=[receiver.route], limits=limits)
        surface.start()
    receiver.start()
    served = Served(receiver, surface, ledger, woken)
    try:
        yield served
    finally:
        served.stop()
        ledger.close()


@pytest.fixture(params=["own", "shared"])
def receiving(request: pytest.FixtureRequest) -> Callable[..., ContextManager[Served]]:
    """`with receiving(ledger_path[, limits]) as served`: the callback route in the arrangement of the param."""
    return partial(serving, shared=request.param == "shared")


def signed_headers(body: str = BODY, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    return {"X-Skylab-Timestamp": timestamp, "X-Skylab-Signature": sign_callback(SECRET, timestamp, body)}


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def url(served: Served, path: str = PATH) -> str:
    return f"http://127.0.0.1:{served.address[1]}{path}"


def raw_exchange(served: Served, head: str, body: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send `head` (request line and headers, without the blank line) and `body`; return all the server says."""
    with socket.create_connection(served.address, timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\nConnection: close\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), f"not an HTTP answer: {answer[:80]!r}"
    return int(answer.split(b" ", 2)[1])


def idle_connections(served: Served, count: int) -> list[socket.socket]:
    """Open `count` TCP connections that never send a byte."""
    return [socket.create_connection(served.address, timeout=5) for _ in range(count)]


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed `sock` (reading gives end of stream); False while it is held open."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def view_answers(served: Served, timeout: float = 5.0) -> dict[str, str]:
    """GET each read-only view of the surface beside the callback; {path: "ok" or what was wrong}.

    "ok" means: 200, /api/status the JSON of `status --json` for our watch, /metrics parsed back by
    prometheus_client with the photo counts the ledger holds. Empty when the callback has no surface.
    """
    if served.surface is None:
        return {}
    answers = {path: requests.get(url(served, path), timeout=timeout) for path in VIEWS}
    found = {path: "ok" if answer.status_code == 200 else f"status {answer.status_code}"
             for path, answer in answers.items()}
    if found["/api/status"] == "ok" and WATCH not in answers["/api/status"].json().get("watches", {}):
        found["/api/status"] = "no such watch in the JSON"
    if found["/metrics"] == "ok":
        families = {f.name: f for f in text_string_to_metric_families(answers["/metrics"].text)}
        photos = {(s.labels["watch"], s.labels["state"]): s.value for s in families["skylab_watch_photos"].samples}
        expected = {(w, st): float(n) for w, states in served.ledger.state_counts().items() for st, n in states.items()}
        if photos != expected:
            found["/metrics"] = f"photos {photos} but the ledger says {expected}"
    return found


def views_ok(served: Served) -> dict[str, str]:
    """What `view_answers` gives when every view of the surface (if there is one) answers as it should."""
    return {path: "ok" for path in VIEWS} if served.surface is not None else {}


# --- what is accepted ------------------------------------------------------------------------------

def test_a_signed_patch_at_the_configured_path_wakes_the_daemon_for_that_job(receiving, tmp_path):
    with receiving(tmp_path / "l.sqlite3") as served:
        answer = requests.patch(url(served), data=BODY, headers=signed_headers(), timeout=5)
        other_job = json.dumps({"id": 43, "status": "completed"})
        trailing_slash = requests.patch(url(served, PATH + "/"), data=other_job, headers=signed_headers(other_job),
                                        timeout=5)
    assert (answer.status_code, trailing_slash.status_code) == (200, 200)
    assert served.woken == [42, 43]


def test_a_replay_is_refused_after_the_receiver_and_its_ledger_restart(receiving, tmp_path):
    headers = signed_headers()
    with receiving(tmp_path / "l.sqlite3") as served:
        first = requests.patch(url(served), data=BODY, headers=headers, timeout=5)
    with receiving(tmp_path / "l.sqlite3") as after_restart:
        replay = requests.patch(url(after_restart), data=BODY, headers=headers, timeout=5)
        padded = requests.patch(url(after_restart), data=BODY, timeout=5,
                                headers={**headers, "X-Skylab-Signature": headers["X-Skylab-Signature"] + " "})
    assert (first.status_code, replay.status_code, padded.status_code) == (200, 401, 401)
    assert "replay" in replay.json()["message"]
    assert (served.woken, after_restart.woken) == ([42], [])


# --- only the one path and the one method ----------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/skylab", "/skylab/cb/extra", "/metrics", "/skylab/cbx", "/api/status"])
def test_a_signed_patch_at_any_other_path_wakes_nothing_404_or_405_where_the_surface_has_a_view(receiving, tmp_path,
                                                                                                path):
    with receiving(tmp_path / "l.sqlite3") as served:
        answer = requests.patch(url(served, path), data=BODY, headers=signed_headers(), timeout=5)
        # what the rest of this server serves at `path` (GET with the token: the surface's views and page)
        served_here = requests.get(url(served, path), headers=bearer(), timeout=5).status_code != 404
    if served.surface is not None and path in VIEWS:
        assert served_here, f"the surface serves {path}"
    assert answer.status_code == (405 if served_here else 404)
    assert "PATCH" not in answer.headers.get("Allow", "")
    assert served.woken == []


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "HEAD"])
def test_only_patch_is_answered_at_the_callback_path_others_get_405(receiving, tmp_path, method):
    with receiving(tmp_path / "l.sqlite3") as served:
        answer = requests.request(method, url(served), data=BODY, headers={**signed_headers(), **bearer()}, timeout=5)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, "PATCH")
    assert served.woken == []


# --- the surface's token is not the callback's proof, and the callback's path is no way round the token ----

def test_on_the_shared_surface_the_callback_needs_its_signature_not_the_token_and_actions_still_need_the_token(
        tmp_path):
    with serving(tmp_path / "l.sqlite3", shared=True) as served:
        unsigned = [requests.patch(url(served), data=BODY, headers=h, timeout=5).status_code
                    for h in ({}, bearer(), {**bearer(), "X-Skylab-Timestamp": str(int(time.time()))})]
        forged = requests.patch(url(served), data=BODY, timeout=5, headers={
            **bearer(), **signed_headers(), "X-Skylab-Signature": sign_callback("wrong-secret", "1", BODY)})
        signed_without_token = requests.patch(url(served), data=BODY, headers=signed_headers(), timeout=5)
        action = url(served, f"/api/watches/{WATCH}/pause")
        # the callback's signature is no token: an action signed like a callback is still refused
        refused = [requests.post(action, data=BODY, headers=h, timeout=5).status_code
                   for h in ({}, signed_headers(), bearer("wrong-token-0123456789abcdef"))]
        paused_without_token = served.ledger.paused_by_hand()
        allowed = requests.post(action, headers=bearer(), timeout=5)
        views = view_answers(served)
    assert unsigned == [401, 401, 401] and forged.status_code == 401
    assert signed_without_token.status_code == 200 and served.woken == [42]
    assert refused == [401, 401, 401] and paused_without_token == {}
    assert allowed.status_code == 200 and allowed.json()["message"] == f"{WATCH}: paused"
    assert views == views_ok(served), "read-only views answer without the token on loopback"


# --- strict Content-Length -------------------------------------------------------------------------

def test_a_patch_without_content_length_is_answered_411(receiving, tmp_path):
    with receiving(tmp_path / "l.sqlite3") as served:
        answer = raw_exchange(served, f"PATCH {PATH} HTTP/1.1\r\nHost: x")
        views = view_answers(served)
    assert status_of(answer) == 411
    assert served.woken == []
    assert views == views_ok(served)


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "12 34", "+5", "0x10"])
def test_a_negative_or_non_numeric_content_length_is_answered_400_without_a_traceback(receiving, tmp_path, capfd,
                                                                                      caplog, length):
    with receiving(tmp_path / "l.sqlite3") as served:
        answer = raw_exchange(served, f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}", b"{}")
        after = requests.patch(url(served), data=BODY, headers=signed_headers(), timeout=5)
        views = view_answers(served)
    assert status_of(answer) == 400
    assert after.status_code == 200, "the receiver carries on"
    assert views == views_ok(served), "and so do the surface's views"
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.exc_info]


def test_a_declared_body_over_the_cap_is_refused_413_before_any_of_it_is_sent(receiving, tmp_path):
    with receiving(tmp_path / "l.sqlite3") as served:
        started = time.monotonic()
        # 300 MB announced, not a byte of it sent: the answer must come from the headers alone.
        answer = raw_exchange(served, f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000")
        elapsed = time.monotonic() - started
        views = view_answers(served)
    assert status_of(answer) == 413
    assert elapsed < 2.0
    assert served.woken == []
    assert views == views_ok(served), "/metrics and /api/status unaffected"


def test_a_body_of_exactly_the_cap_is_read_and_judged_and_one_byte_more_is_413(receiving, tmp_path):
    cap = WebLimits().max_body_bytes
    assert cap == 4 * 1024 * 1024
    with receiving(tmp_path / "l.sqlite3") as served:
        at_cap = requests.patch(url(served), data=b" " * cap, headers=signed_headers(), timeout=10)
        over = raw_exchange(served, f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {cap + 1}")
    assert at_cap.status_code == 401, "read in full, then refused for its signature"
    assert status_of(over) == 413


def test_a_chunked_body_is_held_to_the_same_cap(receiving, tmp_path):
    cap = WebLimits().max_body_bytes
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"  # 1 MiB a chunk, 5 of them: over the 4 MiB cap
    with receiving(tmp_path / "l.sqlite3") as served:
        with socket.create_connection(served.address, timeout=5) as sock:
            sock.sendall(f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            try:
                for _ in range(cap // 0x100000 + 1):
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may hang up as soon as it has answered
            answer = sock.recv(65536)
        views = view_answers(served)
    assert status_of(answer) == 413
    assert served.woken == []
    assert views == views_ok(served), "/metrics and /api/status unaffected"


# --- time and connection bounds --------------------------------------------------------------------

def test_an_idle_or_half_sent_connection_is_closed_after_the_idle_timeout(receiving, tmp_path):
    with receiving(tmp_path / "l.sqlite3") as served:
        idle, half = idle_connections(served, 2)
        half.sendall(f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Le".encode())
        started = time.monotonic()
        wait_for(lambda: closed_by_server(idle) and closed_by_server(half), timeout=5,
                 what="both connections closed by the server")
        elapsed = time.monotonic() - started
        idle.close()
        half.close()
    assert FAST.idle_timeout * 0.8 <= elapsed < 3.0


def test_idle_connections_under_the_limit_add_no_thread_and_delay_neither_a_callback_nor_a_view(receiving,
                                                                                                 tmp_path):
    limits = WebLimits(idle_timeout=30, connection_limit=100)
    with receiving(tmp_path / "l.sqlite3", limits) as served:
        before = threading.active_count()
        held = idle_connections(served, 90)
        try:
            started = time.monotonic()
            answer = requests.patch(url(served), data=BODY, headers=signed_headers(), timeout=5)
            elapsed = time.monotonic() - started
            views = view_answers(served)
            during = threading.active_count()
            still_open = sum(not closed_by_server(sock) for sock in held)
        finally:
            for sock in held:
                sock.close()
    assert answer.status_code == 200 and views == views_ok(served) and elapsed < 2.0
    assert still_open == 90, "the callback went through while the idle connections were held"
    assert during <= before + 1, f"{during - before} thread(s) more for 90 connections"


def test_500_idle_connections_add_no_thread_and_a_callback_and_the_views_get_through_once_they_time_out(receiving,
                                                                                                          tmp_path):
    limits = WebLimits(idle_timeout=0.3, connection_limit=100, threads=4)
    with receiving(tmp_path / "l.sqlite3", limits) as served:
        before = threading.active_count()
        held = idle_connections(served, 500)
        most = threading.active_count()
        results: dict[str, object] = {}
        # Past the limit, waitress stops accepting: the callback (and, on the surface, a GET of each view)
        # waits in the listen queue behind the idle connections and is served once enough of them have
        # been closed for idleness.
        senders = [threading.Thread(target=lambda: results.update(callback=requests.patch(
            url(served), data=BODY, headers=signed_headers(), timeout=30)))]
        if served.surface is not None:
            senders.append(threading.Thread(target=lambda: results.update(views=view_answers(served, timeout=30))))
        started = time.monotonic()
        for sender in senders:
            sender.start()
        try:
            while (alive := [s for s in senders if s.is_alive()]) and time.monotonic() - started < 30:
                most = max(most, threading.active_count())
                alive[0].join(timeout=0.05)
            elapsed = time.monotonic() - started
            wait_for(lambda: sum(closed_by_server(sock) for sock in held) >= 500 - limits.connection_limit,
                     timeout=10, what="the idle connections closed by the server")
            views_after = view_answers(served)
        finally:
            for sock in held:
                sock.close()
    callback = results.get("callback")
    assert isinstance(callback, requests.Response) and callback.status_code == 200, "the callback got through"
    assert served.woken == [42]
    assert results.get("views", {}) == views_ok(served), "the views asked for while the connections were held answered"
    assert views_after == views_ok(served), "and answer after they timed out"
    # the sender threads are ours: waitress adds nothing for 500 connections
    assert most <= before + len(senders), f"{most - before} thread(s) more for 500 connections"
    assert elapsed < 15, f"the callback took {elapsed:.1f} s"


def test_stop_closes_the_port_and_every_held_connection(receiving, tmp_path):
    with receiving(tmp_path / "l.sqlite3", WebLimits(idle_timeout=30)) as served:
        held = idle_connections(served, 3)
        address = served.address
        threads = threading.active_count()
        served.stop()
        assert threading.active_count() < threads, "the server's threads ended"
        wait_for(lambda: all(closed_by_server(sock) for sock in held), timeout=5, what="held connections closed")
        for sock in held:
            sock.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2).close()
