"""What every stage needs, in one object passed explicitly (no globals)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from skylab_watch.config import Config, WatchConfig
from skylab_watch.ledger import Ledger
from skylab_watch.pipeline.outcomes import Deferrals, StudioHealth
from skylab_watch.studio import StudioClient
from skylab_watch.telemetry import Telemetry

log = logging.getLogger("skylab_watch")

CREDITS_NOTICE = "credits"


@dataclass
class CreditGate:
    """Pauses every step that spends credits while the account has none.

    Studio answers 402 when credits run out: nothing is wrong with the photo,
    so nothing is marked failed. The gate closes for `retry_seconds`, then
    lets the next call through as a probe; the first success reopens it.
    """

    ledger: Ledger
    retry_seconds: float
    clock: Callable[[], float] = time.monotonic
    _closed_until: float = 0.0
    _paused: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        # A notice left by an earlier run still stands until a call succeeds: remember it, so the
        # first success clears it (a notice must end with its cause, restart or not).
        self._paused = CREDITS_NOTICE in self.ledger.notices()

    def is_open(self) -> bool:
        """Return True when credit-spending calls may be tried now."""
        return self.clock() >= self._closed_until

    @property
    def paused(self) -> bool:
        """True while the account is known to be out of credits."""
        return self._paused

    def out_of_credits(self, message: str) -> None:
        """Close the gate for retry_seconds; say so once in the log and in `status`.

        The notice is written under the gate's lock, like the flag: a 402 from one
        upload thread and a success from another must leave flag and notice alike,
        or a notice could outlive its cause.
        """
        with self._lock:
            self._closed_until = self.clock() + self.retry_seconds
            first = not self._paused
            self._paused = True
            if first:
                self.ledger.set_notice(CREDITS_NOTICE, f"Studio account out of credits ({message}); "
                                       "uploads and queueing paused until credits are added")
        if first:
            log.warning("Studio says the account is out of credits (%s). Uploads and queueing are "
                        "paused; trying again every %.0f s. Add credits and work resumes by itself.",
                        message, self.retry_seconds)

    def succeeded(self) -> None:
        """A credit-spending call went through: reopen the gate if it was closed."""
        with self._lock:
            was_paused = self._paused
            self._paused = False
            self._closed_until = 0.0
            if was_paused:
                self.ledger.clear_notice(CREDITS_NOTICE)
        if was_paused:
            log.info("Studio accepts work again: credits are back, resuming uploads and queueing.")


@dataclass
class Context:
    """The shared state of one running daemon (or one command)."""

    config: Config
    ledger: Ledger
    studio: StudioClient
    profiles: dict[str, int]
    credits: CreditGate
    staging_dir: Path
    clock: Callable[[], float] = time.time
    # Passing faults are retried for this long (retry.give_up_after_hours) before a photo fails.
    give_up_seconds: float = 24 * 3600.0
    deferrals: Deferrals = field(default_factory=Deferrals)
    health: StudioHealth = field(default_factory=StudioHealth)
    # Watches whose input folder is gone (a share unmounted): nothing of theirs is read or finished.
    paused_watches: set[str] = field(default_factory=set)
    # Watches paused by hand (skylab-watch pause): nothing new of theirs goes towards Studio.
    held_watches: set[str] = field(default_factory=set)

    @property
    def telemetry(self) -> Telemetry:
        """The in-memory metrics of this daemon: the Studio client's own, so its traffic and the failure
        reporter's retries are counted in one place (and nowhere process-global)."""
        return self.studio.telemetry

    def watch(self, name: str) -> WatchConfig:
        """Return the configuration of a watch by name."""
        for watch in self.config.watches:
            if watch.name == name:
                return watch
        raise KeyError(name)

    def has_watch(self, name: str) -> bool:
        """Return True if the watch is (still) configured."""
        return any(w.name == name for w in self.config.watches)
