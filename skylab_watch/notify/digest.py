"""The failure digest: every photo that failed since the last digest, in one message.

Read from the ledger, not collected in memory: a failure recorded just before a crash is in
the next run's first digest. The watermark is the time of the newest digest in the outbox
(or the daemon's start, the first time), so no failure is told twice or skipped.
"""

from __future__ import annotations

import time

from skylab_watch.ledger import Ledger, Photo

EVENT = "failed"
SETTLE_SECONDS = 0.5
"""Failures younger than this wait for the next digest: a write still committing is not skipped."""
MAX_LINES = 200


class FailureDigest:
    """Gathers failed photos into one message every `every` seconds."""

    def __init__(self, ledger: Ledger, every: float, started_at: float) -> None:
        self.ledger = ledger
        self.every = every
        last = ledger.last_alert_at(EVENT)
        self._since = last if last is not None else started_at
        self._next = time.monotonic() + every

    def due(self) -> bool:
        """Return True when it is time to look for failures again."""
        return time.monotonic() >= self._next

    def collect(self, now: float | None = None) -> tuple[str, str] | None:
        """Return (title, body) of the failures since the last digest, or None if there are none."""
        self._next = time.monotonic() + self.every
        until = (now if now is not None else time.time()) - SETTLE_SECONDS
        failed = self.ledger.failed_since(self._since, until)
        if not failed:
            return None
        self._since = max(p.updated_at for p in failed)
        return digest_message(failed)


def digest_message(failed: list[Photo]) -> tuple[str, str]:
    """Given failed photos, return the digest's title and body: one line per photo with watch, path and reason."""
    lines = [_line(p) for p in failed[:MAX_LINES]]
    if len(failed) > MAX_LINES:
        lines.append(f"... and {len(failed) - MAX_LINES} more: skylab-watch status lists them all.")
    lines.append("")
    lines.append("Fix the cause, then: skylab-watch retry --config FILE")
    return f"{len(failed)} photo(s) failed", "\n".join(lines)


def _line(photo: Photo) -> str:
    """The reason already names watch and path (failures.fail_photo); say them when it does not."""
    where = f"{photo.watch}: {photo.rel_path}"
    reason = photo.reason or "no reason recorded"
    return reason if reason.startswith(where) else f"{where}: {reason}"
