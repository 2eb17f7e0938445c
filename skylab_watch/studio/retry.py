"""The one retry policy of the Studio client, built on tenacity.

What is retried, and what never is:
- reads (GET), PUT, PATCH and DELETE are idempotent: retried on 429, 5xx and
  transport errors;
- creates (POST) are retried on 429 and 503 (the service refused before
  acting), and on transport errors only when the request never left (a
  failed connect). After a read timeout, a dropped connection, or a 500, 502
  or 504 (a gateway may have timed out while the service acted) a create is
  never repeated: the caller looks for what it may have created, by name;
- other 4xx (bad key, not found, invalid, out of credits) are never retried.

Waits grow exponentially with full jitter, capped per wait, and the whole
attempt is bounded both by a number of attempts and by total time. A server's
`Retry-After` (on 429, 5xx or a store error) is honoured: it replaces the
backoff for that wait. One longer than `max_retry_after_seconds` ends the
call at once, so the caller can defer the work instead of blocking on it.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

import tenacity

from skylab_watch.studio.errors import StudioError, TransportError

log = logging.getLogger("skylab_watch.studio")

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a Studio call.

    max_attempts: total tries, the first included. max_seconds: no new try
    starts after this long since the first. initial_seconds: the base of the
    exponential backoff. max_backoff_seconds: cap of a single backoff wait.
    max_retry_after_seconds: the longest Retry-After waited out in the call;
    a longer one gives up (never retrying earlier than the server asked).
    """

    max_attempts: int = 6
    max_seconds: float = 120.0
    initial_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    max_retry_after_seconds: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def should_retry(self, exc: BaseException, method: str) -> bool:
        """Given a failure of a `method` call, return True if repeating it is safe and useful."""
        if not isinstance(exc, StudioError) or not exc.retryable:
            return False
        if method.upper() in IDEMPOTENT_METHODS:
            return True
        if isinstance(exc, TransportError):
            return not exc.sent
        return exc.status in (429, 503)

    def wait_seconds(self, attempt: int, exc: BaseException | None) -> float:
        """Return how long to wait before try number `attempt + 1` after `exc`."""
        if isinstance(exc, StudioError) and exc.retry_after is not None:
            return max(exc.retry_after, 0.0)
        ceiling = min(self.max_backoff_seconds, self.initial_seconds * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)

    def call(self, fn: Callable[[], T], method: str, what: str = "") -> T:
        """Run `fn` under this policy; return its result or raise its last error."""
        retrying = tenacity.Retrying(
            stop=(tenacity.stop_after_attempt(self.max_attempts) | tenacity.stop_after_delay(self.max_seconds)
                  # tenacity's `|` is typed for stop_base only, though its stops may be any callable
                  | self._asked_to_wait_too_long),  # type: ignore[operator]
            wait=self._tenacity_wait,
            retry=tenacity.retry_if_exception(lambda exc: self.should_retry(exc, method)),
            sleep=self.sleep,
            reraise=True,
            before_sleep=lambda state: self._log_retry(state, what or method),
        )
        return retrying(fn)

    def _asked_to_wait_too_long(self, state: tenacity.RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        wait = getattr(exc, "retry_after", None)
        return wait is not None and wait > self.max_retry_after_seconds

    def _tenacity_wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self.wait_seconds(state.attempt_number, exc)

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState, what: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info("Studio call %s failed (%s); trying again in %.1f s (attempt %d)",
                 what, exc, wait, state.attempt_number + 1)


NO_RETRY = RetryPolicy(max_attempts=1)
