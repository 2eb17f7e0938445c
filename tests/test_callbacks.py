"""The callback receiver against hostile and broken clients: real waitress over loopback, a real ledger.

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
from pathlib import Path
from typing import Iterator

import pytest
import requests
from support import wait_for

from skylab_watch.callbacks import CallbackReceiver
from skylab_watch.ledger import Ledger
from skylab_watch.studio import sign_callback
from skylab_watch.web import WebLimits

SECRET = "callback-secret-for-tests"
PATH = "/skylab/cb"
BODY = json.dumps({"id": 42, "status": "completed"})
FAST = WebLimits(idle_timeout=0.3)


@contextmanager
def receiving(ledger_path: Path, limits: WebLimits = FAST) -> Iterator[tuple[CallbackReceiver, list]]:
    """Yield a started receiver on a free port, backed by the ledger at `ledger_path`, and the job ids it woke."""
    woken: list[int | None] = []
    ledger = Ledger(ledger_path)
    receiver = CallbackReceiver("127.0.0.1", 0, SECRET, on_job=woken.append,
                                first_sight=ledger.first_sight_of_callback, path=PATH, limits=limits)
    receiver.start()
    try:
        yield receiver, woken
    finally:
        receiver.stop()
        ledger.close()


def signed_headers(body: str = BODY, timestamp: str | None = None) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    return {"X-Skylab-Timestamp": timestamp, "X-Skylab-Signature": sign_callback(SECRET, timestamp, body)}


def url(receiver: CallbackReceiver, path: str = PATH) -> str:
    return f"http://127.0.0.1:{receiver.address[1]}{path}"


def raw_exchange(receiver: CallbackReceiver, head: str, body: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send `head` (request line and headers, without the blank line) and `body`; return all the server says."""
    with socket.create_connection(receiver.address, timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\nConnection: close\r\n\r\n" + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1."), f"not an HTTP answer: {answer[:80]!r}"
    return int(answer.split(b" ", 2)[1])


def idle_connections(receiver: CallbackReceiver, count: int) -> list[socket.socket]:
    """Open `count` TCP connections that never send a byte."""
    return [socket.create_connection(receiver.address, timeout=5) for _ in range(count)]


def closed_by_server(sock: socket.socket) -> bool:
    """True once the server has closed `sock` (reading gives end of stream); False while it is held open."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


# --- what is accepted ------------------------------------------------------------------------------

def test_a_signed_patch_at_the_configured_path_wakes_the_daemon_for_that_job(tmp_path):
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        answer = requests.patch(url(receiver), data=BODY, headers=signed_headers(), timeout=5)
        other_job = json.dumps({"id": 43, "status": "completed"})
        trailing_slash = requests.patch(url(receiver, PATH + "/"), data=other_job, headers=signed_headers(other_job),
                                        timeout=5)
    assert (answer.status_code, trailing_slash.status_code) == (200, 200)
    assert woken == [42, 43]


def test_a_replay_is_refused_after_the_receiver_and_its_ledger_restart(tmp_path):
    headers = signed_headers()
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        first = requests.patch(url(receiver), data=BODY, headers=headers, timeout=5)
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken_after_restart):
        replay = requests.patch(url(receiver), data=BODY, headers=headers, timeout=5)
        padded = requests.patch(url(receiver), data=BODY, timeout=5,
                                headers={**headers, "X-Skylab-Signature": headers["X-Skylab-Signature"] + " "})
    assert (first.status_code, replay.status_code, padded.status_code) == (200, 401, 401)
    assert "replay" in replay.json()["message"]
    assert (woken, woken_after_restart) == ([42], [])


# --- only the one path and the one method ----------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/skylab", "/skylab/cb/extra", "/metrics", "/skylab/cbx"])
def test_any_other_path_is_404_even_with_a_valid_signature(tmp_path, path):
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        answer = requests.patch(url(receiver, path), data=BODY, headers=signed_headers(), timeout=5)
    assert answer.status_code == 404
    assert woken == []


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "HEAD"])
def test_only_patch_is_answered_at_the_callback_path_others_get_405(tmp_path, method):
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        answer = requests.request(method, url(receiver), data=BODY, headers=signed_headers(), timeout=5)
    assert (answer.status_code, answer.headers.get("Allow")) == (405, "PATCH")
    assert woken == []


# --- strict Content-Length -------------------------------------------------------------------------

def test_a_patch_without_content_length_is_answered_411(tmp_path):
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        answer = raw_exchange(receiver, f"PATCH {PATH} HTTP/1.1\r\nHost: x")
    assert status_of(answer) == 411
    assert woken == []


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "12 34", "+5", "0x10"])
def test_a_negative_or_non_numeric_content_length_is_answered_400_without_a_traceback(tmp_path, capfd, caplog,
                                                                                      length):
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        answer = raw_exchange(receiver, f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}", b"{}")
        after = requests.patch(url(receiver), data=BODY, headers=signed_headers(), timeout=5)
    assert status_of(answer) == 400
    assert after.status_code == 200, "the receiver carries on"
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.exc_info]


def test_a_declared_body_over_the_cap_is_refused_413_before_any_of_it_is_sent(tmp_path):
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        started = time.monotonic()
        # 300 MB announced, not a byte of it sent: the answer must come from the headers alone.
        answer = raw_exchange(receiver, f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000")
        elapsed = time.monotonic() - started
    assert status_of(answer) == 413
    assert elapsed < 2.0
    assert woken == []


def test_a_body_of_exactly_the_cap_is_read_and_judged_and_one_byte_more_is_413(tmp_path):
    cap = WebLimits().max_body_bytes
    assert cap == 4 * 1024 * 1024
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        at_cap = requests.patch(url(receiver), data=b" " * cap, headers=signed_headers(), timeout=10)
        over = raw_exchange(receiver, f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {cap + 1}")
    assert at_cap.status_code == 401, "read in full, then refused for its signature"
    assert status_of(over) == 413


def test_a_chunked_body_is_held_to_the_same_cap(tmp_path):
    cap = WebLimits().max_body_bytes
    chunk = b"100000\r\n" + b" " * 0x100000 + b"\r\n"  # 1 MiB a chunk, 5 of them: over the 4 MiB cap
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        with socket.create_connection(receiver.address, timeout=5) as sock:
            sock.sendall(f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
            try:
                for _ in range(cap // 0x100000 + 1):
                    sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may hang up as soon as it has answered
            answer = sock.recv(65536)
    assert status_of(answer) == 413
    assert woken == []


# --- time and connection bounds --------------------------------------------------------------------

def test_an_idle_or_half_sent_connection_is_closed_after_the_idle_timeout(tmp_path):
    with receiving(tmp_path / "l.sqlite3") as (receiver, woken):
        idle, half = idle_connections(receiver, 2)
        half.sendall(f"PATCH {PATH} HTTP/1.1\r\nHost: x\r\nContent-Le".encode())
        started = time.monotonic()
        wait_for(lambda: closed_by_server(idle) and closed_by_server(half), timeout=5,
                 what="both connections closed by the server")
        elapsed = time.monotonic() - started
        idle.close()
        half.close()
    assert FAST.idle_timeout * 0.8 <= elapsed < 3.0


def test_idle_connections_under_the_limit_add_no_thread_and_do_not_delay_a_callback(tmp_path):
    limits = WebLimits(idle_timeout=30, connection_limit=100)
    with receiving(tmp_path / "l.sqlite3", limits) as (receiver, woken):
        before = threading.active_count()
        held = idle_connections(receiver, 90)
        try:
            started = time.monotonic()
            answer = requests.patch(url(receiver), data=BODY, headers=signed_headers(), timeout=5)
            elapsed = time.monotonic() - started
            during = threading.active_count()
            still_open = sum(not closed_by_server(sock) for sock in held)
        finally:
            for sock in held:
                sock.close()
    assert answer.status_code == 200 and elapsed < 2.0
    assert still_open == 90, "the callback went through while the idle connections were held"
    assert during <= before + 1, f"{during - before} thread(s) more for 90 connections"


def test_500_idle_connections_add_no_thread_and_a_callback_gets_through_once_they_time_out(tmp_path):
    limits = WebLimits(idle_timeout=0.3, connection_limit=100, threads=4)
    with receiving(tmp_path / "l.sqlite3", limits) as (receiver, woken):
        before = threading.active_count()
        held = idle_connections(receiver, 500)
        most = threading.active_count()
        result: list[requests.Response] = []
        # Past the limit, waitress stops accepting: the callback waits in the listen queue behind the
        # idle connections and is served once enough of them have been closed for idleness.
        sender = threading.Thread(target=lambda: result.append(
            requests.patch(url(receiver), data=BODY, headers=signed_headers(), timeout=30)))
        started = time.monotonic()
        sender.start()
        try:
            while sender.is_alive() and time.monotonic() - started < 30:
                most = max(most, threading.active_count())
                sender.join(timeout=0.05)
            elapsed = time.monotonic() - started
            closed = sum(closed_by_server(sock) for sock in held)
        finally:
            for sock in held:
                sock.close()
    assert result and result[0].status_code == 200, "the callback got through"
    assert woken == [42]
    assert closed >= 500 - limits.connection_limit, f"only {closed} idle connections were closed by the server"
    # the sender thread is ours: waitress adds nothing for 500 connections
    assert most <= before + 1, f"{most - before} thread(s) more for 500 connections"
    assert elapsed < 15, f"the callback took {elapsed:.1f} s"


def test_stop_closes_the_port_and_every_held_connection(tmp_path):
    with receiving(tmp_path / "l.sqlite3", WebLimits(idle_timeout=30)) as (receiver, woken):
        held = idle_connections(receiver, 3)
        address = receiver.address
        threads = threading.active_count()
        receiver.stop()
        assert threading.active_count() < threads, "the server's threads ended"
        wait_for(lambda: all(closed_by_server(sock) for sock in held), timeout=5, what="held connections closed")
        for sock in held:
            sock.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(address, timeout=2).close()
