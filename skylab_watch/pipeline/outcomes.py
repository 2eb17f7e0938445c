"""One failure taxonomy: what each kind of error means for the work, in one table.

Every stage reports its errors through `classify`; nothing else decides
between "wait and try again" and "give up". The rule of the house:

- a *transient* fault (5xx, 429, transport errors and timeouts, BadDigest,
  an expired URL, out of credits, a paused share, a full disk) never costs a
  photo: the step is deferred with capped, jittered backoff and tried again,
  however long it lasts. Only the wall-clock budget
  (`retry.give_up_after_hours`) ends it, failing the photo with the last reason;
- a *permanent* fault (422 and other refusals, a job or photo deleted at
  Studio, a name the filesystem cannot hold, a link in the output tree, an
  unsupported URL scheme) fails
  the photo at once, with a reason naming the watch and the file;
- a fault that a fresh look may mend (a result that does not decode, a result
  URL the store refuses) is tried again a bounded few times, then fails.

The global Studio backoff is only for faults of the service or the network
(transport, 5xx, 429, a refused key), never for one item's refusal.
"""

from __future__ import annotations

import errno
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Callable, Hashable

from skylab_watch.outputs import LinkInTheWay
from skylab_watch.watch.scan import root_available
from skylab_watch.studio import (
    AuthError, BadDigestError, InvalidRequestError, NotFoundError, OutOfCreditsError, RateLimitedError,
    ServerError, StoreError, TransportError, UrlExpiredError,
)

log = logging.getLogger("skylab_watch")


class Outcome(str, Enum):
    """What to do after a step failed."""

    RETRY_LATER = "retry later"            # this item only, with capped backoff, within the budget
    BACK_OFF_STUDIO = "back off Studio"    # the service or network is unwell: all Studio work waits
    PAUSE_CREDITS = "pause for credits"    # nothing is wrong with the item; the account is empty
    PAUSE_WATCH = "pause the watch"        # the watch's input (a share) is gone; wait for it
    PAUSE_OUTPUT = "pause output"          # the output disk refuses writes; wait for a person
    LOOK_AGAIN = "look again, then fail"   # a fresh look may help: bounded tries, then fail
    FAIL_ITEM = "fail the item"            # permanent: fail at once with the reason
    SUPERSEDE = "supersede"                # the file changed: its new content is a new version

    @property
    def transient(self) -> bool:
        """True when the item waits (never failed except by the wall-clock budget)."""
        return self not in (Outcome.FAIL_ITEM, Outcome.LOOK_AGAIN, Outcome.SUPERSEDE)


# ---------------------------------------------------------------- our own kinds of fault

class FileChanged(Exception):
    """The original's bytes no longer match the hash recorded for this version."""


class WatchUnavailable(OSError):
    """The watch's input folder (a share) is gone or unreadable: the watch is paused, not the file lost."""


def watch_unavailable(root: Path) -> WatchUnavailable | None:
    """Given a watch's input folder, return the error that pauses the watch if it cannot be listed, else None."""
    reason = root_available(root)
    if reason is None:
        return None
    return WatchUnavailable(errno.ENOENT, f"the watch's folder {root} is gone or unreadable ({reason})")


class FileVanished(OSError):
    """The original is gone although its watch's folder is there: it was moved or deleted by someone."""


class OutputUnwritable(OSError):
    """The output disk refused a write (full, read-only, permissions): wait for a person to fix it."""


class UnusableResult(Exception):
    """Studio's result could not be used (does not decode, too large...): a fresh fetch may mend it."""


class UnsupportedResultUrl(Exception):
    """Studio gave a result URL of a scheme we never fetch (file://, ftp://): waiting will not change it."""


# Output writes refused for reasons a person fixes (space, mount, permissions, a file in the way).
DISK_TROUBLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                          errno.ENOTDIR, errno.EEXIST, errno.EISDIR})
PASSING_IO = frozenset({errno.EIO, errno.ESTALE, errno.ETIMEDOUT, errno.EHOSTDOWN, errno.EAGAIN,
                        errno.EINTR, errno.EBUSY})


@dataclass(frozen=True)
class Rule:
    """One row of the table: errors matching `kind` (and `when`, if given) have `outcome`."""

    kind: type[BaseException]
    outcome: Outcome
    meaning: str
    when: Callable[[BaseException], bool] | None = None

    def matches(self, exc: BaseException) -> bool:
        """Return True when this row speaks of `exc`."""
        return isinstance(exc, self.kind) and (self.when is None or self.when(exc))


def _errno_in(codes: frozenset[int]) -> Callable[[BaseException], bool]:
    return lambda exc: getattr(exc, "errno", None) in codes


# Order matters: the first matching row decides (subclasses before their bases).
TABLE: tuple[Rule, ...] = (
    Rule(FileChanged, Outcome.SUPERSEDE, "the file changed after it was hashed"),
    Rule(OutOfCreditsError, Outcome.PAUSE_CREDITS, "the account is out of credits"),
    Rule(AuthError, Outcome.BACK_OFF_STUDIO, "Studio refused the API key; a person must fix it"),
    Rule(RateLimitedError, Outcome.BACK_OFF_STUDIO, "Studio asks us to slow down (429)"),
    Rule(ServerError, Outcome.BACK_OFF_STUDIO, "trouble on Studio's side (5xx)"),
    Rule(TransportError, Outcome.BACK_OFF_STUDIO, "Studio unreachable or no answer in time"),
    Rule(BadDigestError, Outcome.RETRY_LATER, "bytes damaged in transit (BadDigest)"),
    Rule(UrlExpiredError, Outcome.RETRY_LATER, "presigned URL expired; a fresh one is asked for"),
    Rule(StoreError, Outcome.RETRY_LATER, "the object store had trouble (5xx, 429)",
         lambda exc: bool(getattr(exc, "retryable", False))),
    Rule(StoreError, Outcome.LOOK_AGAIN, "the object store refused the URL (404, ...)"),
    Rule(NotFoundError, Outcome.FAIL_ITEM, "it no longer exists at Studio (deleted?)"),
    Rule(InvalidRequestError, Outcome.FAIL_ITEM, "Studio refused the request (422 or another 4xx)"),
    Rule(UnsupportedResultUrl, Outcome.FAIL_ITEM, "a result URL of a scheme we never fetch"),
    Rule(UnusableResult, Outcome.LOOK_AGAIN, "a result that cannot be used"),
    Rule(WatchUnavailable, Outcome.PAUSE_WATCH, "the watch's input folder is gone (share unmounted?)"),
    Rule(FileVanished, Outcome.FAIL_ITEM, "the original was moved or deleted"),
    Rule(LinkInTheWay, Outcome.FAIL_ITEM, "a symbolic link in the output folder where an output must go"),
    Rule(OSError, Outcome.FAIL_ITEM, "a name the filesystem cannot hold", _errno_in(frozenset({errno.ENAMETOOLONG}))),
    Rule(OutputUnwritable, Outcome.PAUSE_OUTPUT, "the output disk refuses writes"),
    Rule(OSError, Outcome.RETRY_LATER, "a passing I/O fault (EIO, ESTALE, timeout)", _errno_in(PASSING_IO)),
    Rule(FileNotFoundError, Outcome.FAIL_ITEM, "a file that is not there"),
    Rule(PermissionError, Outcome.FAIL_ITEM, "a file we may not read"),
    Rule(OSError, Outcome.RETRY_LATER, "another I/O fault"),
    Rule(Exception, Outcome.RETRY_LATER, "an unexpected error (a bug): logged with its traceback"),
)

LOOK_AGAIN_TRIES = 3
# The longest Retry-After honoured: a server asking for more (or sending nonsense) gets this.
MAX_RETRY_AFTER_SECONDS = 3600.0
# Outcomes after which no further Studio call of the same pass is worth making.
STOP_THE_PASS = (Outcome.BACK_OFF_STUDIO, Outcome.PAUSE_CREDITS)
STUDIO_BACKOFF_SECONDS = (2.0, 120.0)


def classify(exc: BaseException) -> Rule:
    """Given an error a step met, return the row of the table that decides what happens next."""
    for rule in TABLE:
        if rule.matches(exc):
            return rule
    return TABLE[-1]


# ---------------------------------------------------------------- deferral bookkeeping

@dataclass
class Deferrals:
    """When each deferred item may be tried again: capped, jittered exponential backoff per item.

    Kept in memory on purpose: after a restart every item is due at once,
    which is what a restart is for; the give-up budget itself lives in the
    ledger (`photos.trouble_since`), so it survives restarts.
    """

    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    clock: Callable[[], float] = time.monotonic
    rng: random.Random = field(default_factory=random.Random)
    _until: dict[Hashable, float] = field(default_factory=dict)
    _delay: dict[Hashable, float] = field(default_factory=dict)
    _tries: dict[Hashable, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def due(self, key: Hashable) -> bool:
        """Return True when `key` is not waiting out a backoff."""
        with self._lock:
            return self._until.get(key, 0.0) <= self.clock()

    def defer(self, key: Hashable, at_least: float | None = None) -> float:
        """Defer `key` by the next backoff step (or at least `at_least` s); return the wait chosen."""
        with self._lock:
            delay = min(self.cap_seconds, self._delay.get(key, self.base_seconds / 2) * 2)
            self._delay[key] = delay
            wait = max(self.rng.uniform(delay / 2, delay), min(at_least or 0.0, MAX_RETRY_AFTER_SECONDS))
            self._until[key] = self.clock() + wait
            return wait

    def count_try(self, key: Hashable) -> int:
        """Count one more bounded try of `key` (LOOK_AGAIN); return how many so far."""
        with self._lock:
            self._tries[key] = self._tries.get(key, 0) + 1
            return self._tries[key]

    def clear(self, key: Hashable) -> None:
        """`key` went through: forget its backoff and its tries."""
        with self._lock:
            self._until.pop(key, None)
            self._delay.pop(key, None)
            self._tries.pop(key, None)


@dataclass
class StudioHealth:
    """The global Studio backoff: only transport errors, 5xx, 429 and a refused key open it.

    One item's refusal never does (that fails the item). Any success closes it.
    """

    clock: Callable[[], float] = time.monotonic
    first_wait: float = STUDIO_BACKOFF_SECONDS[0]
    max_wait: float = STUDIO_BACKOFF_SECONDS[1]
    _until: float = 0.0
    _wait: float = 0.0
    _since: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ready(self) -> bool:
        """Return True when Studio calls may be made now."""
        return self.clock() >= self._until

    def trouble(self, exc: BaseException) -> float:
        """Studio or the network failed: hold Studio work back for the next capped step; return it."""
        with self._lock:
            self._wait = min(self.max_wait, self._wait * 2) if self._wait else self.first_wait
            asked = getattr(exc, "retry_after", None)
            wait = max(self._wait, min(float(asked), MAX_RETRY_AFTER_SECONDS)) if asked is not None else self._wait
            self._until = self.clock() + wait
            first = self._since is None
            if first:
                self._since = time.time()
        level = logging.WARNING if first or wait >= self.max_wait else logging.INFO
        log.log(level, "Studio trouble: %s; Studio work waits %.0f s", exc, wait)
        return wait

    def succeeded(self) -> None:
        """A Studio call went through: end the backoff."""
        with self._lock:
            was, self._since = self._since, None
            self._wait, self._until = 0.0, 0.0
        if was is not None:
            log.info("Studio answers again (trouble began %s)", time.strftime("%H:%M:%S", time.localtime(was)))

    @property
    def troubled_since(self) -> float | None:
        """Wall-clock time the current spell of trouble began, or None."""
        return self._since
