"""Studio's answers are bounded: body sizes, overall deadlines, schemes and addresses, and the API key
never crosses hosts. Each case is a real HTTP answer from a small hostile server over loopback."""

from __future__ import annotations

import io
import resource
import time

import pytest
import requests
from hostile_http import HostileServer, drip, endless, fixed, header_value
from support import API_KEY

from skylab_watch.studio import (
    NO_RETRY, AnswerTooLarge, DownloadTooLarge, RedirectError, RefusedUrlError, StudioClient, TransportError,
)
from skylab_watch.studio.http import make_session

PUBLIC_API = "https://93.184.216.34"  # a public address, never connected to: only its kind matters


def _client(url: str, **options: object) -> StudioClient:
    options.setdefault("timeout", (2.0, 5.0))
    return StudioClient(url, API_KEY, retry=NO_RETRY, **options)  # type: ignore[arg-type]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- bodies

def test_an_endless_json_answer_is_cut_at_8_mib_as_studio_trouble():
    with HostileServer(endless()) as server, _client(server.url) as client:
        with pytest.raises(AnswerTooLarge, match="longer than the 8 MiB") as err:
            client.list_profiles()
    assert not err.value.retryable


def test_an_endless_download_stops_at_its_cap_with_flat_memory(tmp_path):
    before = _peak_rss_mb()
    with HostileServer(endless(content_type=b"image/png", chunk=b"\0" * 65536)) as server, \
            _client(server.url, max_download_bytes=64 << 20) as client, open(tmp_path / "r.part", "w+b") as sink:
        with pytest.raises(DownloadTooLarge, match="longer than the 64 MiB"):
            client.download(server.url + "/result.png", sink)
        assert sink.tell() <= 64 << 20
    assert _peak_rss_mb() - before < 40, "the download is streamed to the sink, never held"


def test_a_download_declaring_more_than_the_cap_is_refused_before_a_byte_is_read():
    declared = fixed(200, b"", {"Content-Length": str(300 << 20)})
    with HostileServer(declared) as server, _client(server.url) as client:
        sink = io.BytesIO()
        with pytest.raises(DownloadTooLarge, match="declares 314572800 bytes"):
            client.download(server.url + "/result.png", sink)
    assert sink.getvalue() == b""


def test_an_endless_error_page_is_read_only_as_far_as_its_message():
    with HostileServer(endless(status_line=b"HTTP/1.1 500 Oops", content_type=b"text/html")) as server, \
            _client(server.url) as client:
        started = time.monotonic()
        with pytest.raises(Exception) as err:
            client.list_profiles()
    assert err.value.status == 500 and time.monotonic() - started < 2


# ---------------------------------------------------------------- deadlines

DRIPPED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]"


def test_an_api_answer_dripping_its_headers_is_cut_at_the_deadline():
    with HostileServer(drip(DRIPPED_HEAD, every=0.2)) as server, _client(server.url, api_deadline=1.0) as client:
        started = time.monotonic()
        with pytest.raises(TransportError, match="no complete answer within 1 s") as err:
            client.list_profiles()
    assert 0.9 < time.monotonic() - started < 2.5 and err.value.sent


def test_a_download_dripping_its_body_is_cut_at_the_deadline():
    slow_body = drip(b"x" * 1000, every=0.2)

    def head_then_drip(sock, head):
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        slow_body(sock, head)
    with HostileServer(head_then_drip) as server, _client(server.url, transfer_deadline=1.0) as client:
        started = time.monotonic()
        with pytest.raises(TransportError, match="within 1 s"):
            client.download(server.url + "/result.jpg", io.BytesIO())
    assert time.monotonic() - started < 2.5


def test_an_upload_whose_answer_drips_is_cut_at_the_deadline():
    with HostileServer(drip(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", every=0.2)) as server, \
            _client(server.url, transfer_deadline=1.0) as client:
        started = time.monotonic()
        with pytest.raises(TransportError, match="within 1 s"):
            client.put_bytes(server.url + "/store/1", b"bytes", "md5", regular_job=False)
    assert time.monotonic() - started < 2.5


# ---------------------------------------------------------------- where requests go

@pytest.mark.parametrize("url", ["ftp://127.0.0.1/result.jpg", "file:///etc/passwd", "gopher://x/1"])
def test_a_url_of_another_scheme_is_never_fetched(url):
    with _client("http://127.0.0.1:9") as client:
        with pytest.raises(RefusedUrlError, match="only http"):
            client.download(url, io.BytesIO())


def test_a_download_redirected_to_another_scheme_is_refused():
    with HostileServer(fixed(302, headers={"Location": "file:///etc/passwd"})) as server, \
            _client(server.url) as client:
        with pytest.raises(RefusedUrlError, match="only http"):
            client.download(server.url + "/result.jpg", io.BytesIO())


def test_endless_redirects_of_a_download_are_refused():
    with HostileServer(fixed(302, headers={"Location": "/again"})) as server, _client(server.url) as client:
        with pytest.raises(RefusedUrlError, match="more than 5 redirects"):
            client.download(server.url + "/result.jpg", io.BytesIO())
    assert len(server.heads) == 6


def test_a_loopback_download_is_refused_when_the_api_is_public():
    with HostileServer(fixed(200, b"secret of the machine")) as server, _client(PUBLIC_API) as client:
        with pytest.raises(RefusedUrlError, match="private or loopback"):
            client.download(server.url + "/admin", io.BytesIO())
    assert server.heads == []


def test_a_name_resolving_to_loopback_is_refused_from_the_real_peer():
    with HostileServer(fixed(200, b"secret of the machine")) as server, _client(PUBLIC_API) as client:
        port = server.url.rsplit(":", 1)[1]
        with pytest.raises(RefusedUrlError, match=r"private or loopback address \(127\.0\.0\.1\)"):
            client.download(f"http://localhost:{port}/admin", io.BytesIO())
    assert server.heads == []


def test_a_loopback_download_is_allowed_when_the_api_is_on_loopback():
    with HostileServer(fixed(200, b"result bytes")) as server, _client(server.url) as client:
        sink = io.BytesIO()
        assert client.download(server.url + "/result.jpg", sink) == 12
    assert sink.getvalue() == b"result bytes"


# ---------------------------------------------------------------- the API key

def test_an_api_redirect_is_not_followed_and_the_key_never_reaches_the_other_host():
    with HostileServer(fixed(200, b"[]")) as elsewhere, \
            HostileServer(fixed(302, headers={"Location": elsewhere.url + "/api/public/v1/profiles"})) as api, \
            _client(api.url) as client:
        with pytest.raises(RedirectError, match="set studio.api_url") as err:
            client.list_profiles()
    assert header_value(api.heads[0], "X-SLT-API-KEY") == API_KEY
    assert elsewhere.heads == [] and err.value.location.startswith(elsewhere.url)


def test_a_redirected_download_never_carries_the_key():
    with HostileServer(fixed(200, b"result")) as elsewhere, \
            HostileServer(fixed(307, headers={"Location": elsewhere.url + "/r.jpg"})) as store, \
            _client(store.url) as client:
        assert client.download(store.url + "/r.jpg", io.BytesIO()) == 6
    assert len(elsewhere.heads) == 1
    assert all(header_value(h, "X-SLT-API-KEY") is None for h in store.heads + elsewhere.heads)


# ---------------------------------------------------------------- connections

def test_the_connection_pool_is_bounded_and_never_blocks():
    session = make_session(8)
    try:
        adapter = session.get_adapter("https://studio.skylabtech.ai/")
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == 8
        assert adapter.poolmanager.connection_pool_kw["block"] is False
        assert session.get_adapter("http://127.0.0.1/") is adapter
    finally:
        session.close()


# ---------------------------------------------------------------- the environment's proxy settings

def test_proxy_settings_are_read_from_the_environment_once_per_host_and_still_obeyed(monkeypatch):
    """The session keeps what the environment says per host (requests would walk the environment on every
    call); a proxy set there is used for every call, and NO_PROXY still sends a host direct."""
    with HostileServer(fixed(200, b"{}")) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.setenv("NO_PROXY", "direct.invalid")
        monkeypatch.delenv("no_proxy", raising=False)
        session = make_session()
        for _ in range(2):
            assert session.get("http://studio.invalid/api/profiles", timeout=5).status_code == 200
        monkeypatch.delenv("HTTP_PROXY")  # kept from the first call: the daemon's environment does not change
        assert session.get("http://studio.invalid/api/jobs", timeout=5).status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get("http://direct.invalid/api/profiles", timeout=5)  # NO_PROXY: tried direct, no such host
    assert [head.split(b" ")[1] for head in proxy.heads] == [
        b"http://studio.invalid/api/profiles", b"http://studio.invalid/api/profiles", b"http://studio.invalid/api/jobs"]
