"""Bandwidth: the daemon's uploads through a 100 Mbit/s token bucket.

The bench makes its own network namespace with a veth pair into it, puts the
emulator inside, and shapes the host side's egress (the uplink, daemon to
Studio) with `tc ... tbf rate 100mbit burst 32kbit latency 400ms`; netem is
not available, so the per-call latency stays in the emulator. Needs root
(CAP_NET_ADMIN); without it the part is skipped with a message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

from bench.common import cached_photos
from bench.ingest import run_daemon

RATE_MBIT = 100


def _ip(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, text=True)


class ShapedLink:
    """A namespace `ns` reachable at `peer` through a veth pair whose host side is rate-limited."""

    def __init__(self, rate_mbit: int) -> None:
        tag = os.getpid() % 100_000
        self.ns, self.host_if, self.ns_if = f"swbench{tag}", f"swb{tag}h", f"swb{tag}n"
        octet = tag % 250 + 1
        self.host_ip, self.peer = f"10.213.{octet}.1", f"10.213.{octet}.2"
        self.rate_mbit = rate_mbit

    def __enter__(self) -> ShapedLink:
        try:
            _ip("ip", "netns", "add", self.ns)
            _ip("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _ip("ip", "link", "set", self.ns_if, "netns", self.ns)
            _ip("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _ip("ip", "link", "set", self.host_if, "up")
            _ip("ip", "netns", "exec", self.ns, "ip", "addr", "add", f"{self.peer}/30", "dev", self.ns_if)
            _ip("ip", "netns", "exec", self.ns, "ip", "link", "set", self.ns_if, "up")
            _ip("ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up")
            _ip("tc", "qdisc", "add", "dev", self.host_if, "root", "tbf", "rate", f"{self.rate_mbit}mbit",
                "burst", "32kbit", "latency", "400ms")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


def unavailable() -> str | None:
    """Return why the shaped link cannot be made here, or None if it can."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) for ip netns and tc"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


def run(quick: bool, count: int | None = None, latency: float = 0.05) -> dict[str, Any]:
    """Run the bandwidth part; print and return the daemon's upload rate against the link's."""
    count = count or (12 if quick else 200)
    size = (600, 400) if quick else (3000, 2000)
    print(f"bandwidth: {count} photos of {size[0]}x{size[1]} through a {RATE_MBIT} Mbit/s tbf uplink, "
          f"{latency * 1000:.0f} ms per call", flush=True)
    reason = unavailable()
    if reason:
        print(f"  skipped: {reason}", flush=True)
        return {"skipped": reason}
    photos = cached_photos(count, *size)
    try:
        with ShapedLink(RATE_MBIT) as link:
            result = run_daemon(photos, latency, emulator={"netns": link.ns, "host": link.peer})
    except subprocess.CalledProcessError as exc:
        print(f"  skipped: {' '.join(exc.cmd)} failed: {exc.stderr.strip()}", flush=True)
        return {"skipped": exc.stderr.strip()}
    shutil.rmtree(result.pop("scratch"), ignore_errors=True)
    link_mb = RATE_MBIT / 8
    share = result["upload"]["mb_per_s"] / link_mb
    print(f"  daemon upload stage {result['upload']['seconds']:.1f} s = {result['upload']['mb_per_s']:.2f} MB/s "
          f"of the link's {link_mb:.2f} MB/s: {share:.0%} (goal >= 90%; TCP/IP headers alone take ~5%)",
          flush=True)
    result["link_share"] = share
    return result
