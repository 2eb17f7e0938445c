"""Bounds on every connection to Studio: an overall deadline per request, and which addresses may be reached.

requests only knows per-read timeouts: a server that drips one byte a
second, in its headers or its body, never trips them. A `Guard` gives one
exchange (a request, its redirects and the reading of its body) an overall
deadline: when it runs out, the sockets the exchange used are shut down
(one watcher thread keeps every guard's time, `deadlines`), which ends any
blocked read or write at once, and the guard turns what
broke into a `TransportError` that says so. Guards nest: an inner one never
outlives the one around it (`doctor` caps its whole API check this way).

The same guard says which peers may be reached. Studio's API runs on a
public host, and a real Studio never hands out a result URL on loopback,
link-local or private addresses: such a download (or a redirect to one)
would let whoever controls an answer read the machine's own services. So a
connection to such an address is refused, checked on the socket's real peer
after connecting (no DNS trick between a check and the connect), unless the
API itself lives on such an address (the emulator on 127.0.0.1, a test
rig on the LAN). Through a proxy the peer is the proxy, chosen by the
administrator; there only literal private addresses in URLs are refused
(see `check_url`).

Connections are made by the guarded connection classes below, which
`bounded_session` installs in the session's pools.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from skylab_watch.studio.deadlines import WATCHER, Deadline
from skylab_watch.studio.errors import RefusedUrlError, StudioError, TransportError

_local = threading.local()


# --------------------------------------------------------------------- addresses

def is_private_address(text: str) -> bool:
    """Given an IP address, return True when it is not a public Internet address (loopback, private,
    link-local, unspecified, multicast or reserved), IPv4-mapped IPv6 included."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified
            or address.is_multicast or address.is_reserved)


def host_is_local(host: str) -> bool:
    """Return True for `localhost` or a literal loopback address (what the config check lets speak http)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AddressPolicy:
    """Which peers one client may connect to: public addresses, and private ones only when its API is private.

    Whether the API is private is learnt by resolving its host the first
    time it is needed (not at construction: the network may not be up yet
    when the daemon starts), and remembered once the lookup worked.
    """

    def __init__(self, api_url: str) -> None:
        self.api_host = urlsplit(api_url).hostname or ""
        self._api_private: bool | None = None

    def api_is_private(self) -> bool:
        """Return True when the API's own host is on loopback, link-local or a private network."""
        if self._api_private is None:
            if host_is_local(self.api_host) or is_private_address(self.api_host):
                self._api_private = True
            else:
                try:
                    infos = socket.getaddrinfo(self.api_host, None, proto=socket.IPPROTO_TCP)
                except OSError:
                    return False  # not known yet: strict, and asked again next time
                self._api_private = any(is_private_address(str(info[4][0])) for info in infos)
        return self._api_private

    def check_peer(self, host: str, peer: str) -> None:
        """Raise RefusedUrlError when `host`, connected at `peer`, is private and the API is not."""
        if is_private_address(peer) and not self.api_is_private():
            raise RefusedUrlError(f"{host} is at a private or loopback address ({peer}) while Studio's API "
                                  "is public; refused")

    def check_url(self, url: str) -> None:
        """Raise RefusedUrlError for a URL never fetched: not http(s), no host, or a literal private address."""
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise RefusedUrlError(f"only http(s) URLs are fetched, not {url[:80]!r}")
        if is_private_address(parts.hostname):
            self.check_peer(parts.hostname, parts.hostname)  # a name is checked at its real peer, on connect


# --------------------------------------------------------------------- the guard

class Guard:
    """One exchange's overall deadline and address policy, in force in this thread while entered.

    Used as a context manager around sending a request and reading its body.
    On the deadline every socket the exchange touched is shut down; an error
    raised because of that leaves the `with` block as a TransportError saying
    the deadline ran out.
    """

    def __init__(self, seconds: float, policy: AddressPolicy | None = None) -> None:
        self.seconds = seconds
        self.policy = policy
        self.expires = time.monotonic() + seconds
        self.expired = False
        self._outer: Guard | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: Deadline | None = None

    def __enter__(self) -> Guard:
        self._outer = getattr(_local, "guard", None)
        if self._outer is not None:
            self.expires = min(self.expires, self._outer.expires)
            self.policy = self.policy or self._outer.policy
        remaining = self.expires - time.monotonic()
        if remaining <= 0:
            raise TransportError(f"no time left of the {self._total():g} s allowed", sent=False)
        self._timer = WATCHER.add(self.expires, self._expire)
        _local.guard = self
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _local.guard = self._outer
        if self._timer is not None:
            WATCHER.cancel(self._timer)
        if exc is not None and self.expired and not isinstance(exc, RefusedUrlError) \
                and isinstance(exc, (StudioError, OSError, requests.exceptions.RequestException,
                                     urllib3.exceptions.HTTPError, ValueError)):
            method, url = getattr(exc, "method", ""), getattr(exc, "url", "")
            raise TransportError(f"no complete answer within {self._total():g} s (the server is too slow)",
                                 method, url, sent=True) from exc

    def _total(self) -> float:
        outer = self._outer
        return min(self.seconds, outer._total()) if outer is not None else self.seconds  # noqa: SLF001

    def watch(self, sock: socket.socket | None) -> None:
        """Shut `sock` down when the deadline comes (at once if it has come already)."""
        if sock is None:
            return
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut a socket down for both directions: a read or write blocked on it in another thread returns.

    The plain socket's method, also for a TLS socket: the TLS layer's own
    shutdown must not run from another thread.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def current_guard() -> Guard | None:
    """Return the guard in force in this thread, if any."""
    return getattr(_local, "guard", None)


def _guard_connection(conn: Any) -> None:
    """Put a connection about to be used under the current guard (a pooled one is reused across exchanges)."""
    guard = current_guard()
    if guard is not None:
        guard.watch(conn.sock)


def _guard_new_socket(conn: Any, sock: socket.socket) -> socket.socket:
    """Put a socket just connected under the current guard, before any TLS handshake; refuse a private peer.

    Through a proxy the peer is the proxy, which the administrator chose:
    not checked here.
    """
    guard = current_guard()
    if guard is None:
        return sock
    guard.watch(sock)
    if guard.policy is not None and conn.proxy is None:
        try:
            guard.policy.check_peer(conn.host, str(sock.getpeername()[0]))
        except RefusedUrlError:
            sock.close()
            raise
    return sock


class _Guarded:
    """Mixed into urllib3's connection classes: the current Guard may cut the socket, and checks its peer."""

    def _new_conn(self) -> socket.socket:
        return _guard_new_socket(self, super()._new_conn())  # type: ignore[misc]  # urllib3's, next in the MRO

    def request(self, *args: Any, **kwargs: Any) -> None:
        _guard_connection(self)
        super().request(*args, **kwargs)  # type: ignore[misc]  # urllib3's, next in the MRO


class GuardedHTTPConnection(_Guarded, urllib3.connection.HTTPConnection):
    """An HTTP connection whose socket the current Guard may cut, and whose peer it checks."""


class GuardedHTTPSConnection(_Guarded, urllib3.connection.HTTPSConnection):
    """An HTTPS connection whose socket the current Guard may cut, and whose peer it checks."""


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


_POOLS = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}


class GuardedAdapter(HTTPAdapter):
    """requests' adapter with guarded connections, direct and through proxies alike."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


class EnvironmentOnceSession(requests.Session):
    """A requests Session that reads proxy and CA-bundle settings from the environment once per host.

    requests looks them up again for every request (every variable of the
    environment is walked for `*_proxy`), which costs more than anything
    else it does for a small API call. The environment of a running daemon
    does not change, so the answer for a scheme and host is kept. Settings
    given per request (we give none) are merged as requests merges them.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        if proxies or verify not in (None, True) or not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(str(url))
        key = (parts.scheme, parts.netloc)
        found = self._environment.get(key)
        if found is None:
            found = dict(super().merge_environment_settings(url, {}, None, verify, None))
            if len(self._environment) < 64:  # presigned hosts are few (the API, the store); bounded anyway
                self._environment[key] = found
        merged = {**found, "proxies": dict(found["proxies"])}
        merged["stream"] = requests.sessions.merge_setting(stream, self.stream)
        merged["cert"] = requests.sessions.merge_setting(cert, self.cert)
        return merged


def bounded_session(pool_size: int) -> requests.Session:
    """Return a session of guarded connections keeping at most `pool_size` connections per host.

    Never retried by urllib3 (our RetryPolicy decides), and not blocking
    when the pool is full (a blocked wait has no deadline): the worker pools
    are sized so that it never is (see `startup.make_client`).
    """
    session = EnvironmentOnceSession()
    adapter = GuardedAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
