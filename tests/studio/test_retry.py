"""The retry policy: what it repeats, what it never repeats, how long it waits."""

import random
from unittest import mock

import pytest

from skylab_watch.studio import (
    AuthError, InvalidRequestError, NotFoundError, OutOfCreditsError, RateLimitedError, RetryPolicy,
    ServerError, TransportError,
)


def make_policy(**kw):
    slept: list[float] = []
    policy = RetryPolicy(sleep=slept.append, rng=random.Random(1), **kw)
    return policy, slept


def failing(errors, result="ok"):
    """Return a callable that raises each error in turn, then returns `result`; and its call log."""
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result
    return fn, calls


def test_read_is_retried_on_server_error_until_it_succeeds():
    policy, slept = make_policy()
    fn, calls = failing([ServerError("boom", 503), ServerError("boom", 502)])
    assert policy.call(fn, "GET") == "ok"
    assert len(calls) == 3
    assert len(slept) == 2


@pytest.mark.parametrize("error", [
    AuthError("bad key", 403), NotFoundError("gone", 404), InvalidRequestError("bad", 422),
    OutOfCreditsError("no credits", 402),
])
def test_other_4xx_are_never_retried(error):
    policy, slept = make_policy()
    fn, calls = failing([error])
    with pytest.raises(type(error)):
        policy.call(fn, "GET")
    assert len(calls) == 1 and slept == []


def test_create_is_not_repeated_after_a_read_timeout():
    policy, _ = make_policy()
    fn, calls = failing([TransportError("no answer", sent=True)])
    with pytest.raises(TransportError):
        policy.call(fn, "POST")
    assert len(calls) == 1


def test_create_is_repeated_when_the_connection_never_opened():
    policy, _ = make_policy()
    fn, calls = failing([TransportError("refused", sent=False)])
    assert policy.call(fn, "POST") == "ok"
    assert len(calls) == 2


def test_create_is_repeated_after_429_and_503_answers():
    policy, _ = make_policy()
    fn, calls = failing([RateLimitedError("slow down", retry_after=1), ServerError("busy", 503)])
    assert policy.call(fn, "POST") == "ok"
    assert len(calls) == 3


@pytest.mark.parametrize("status", [500, 502, 504])
def test_create_is_not_repeated_after_an_answer_that_may_follow_the_act(status):
    policy, _ = make_policy()
    fn, calls = failing([ServerError("gateway", status)])
    with pytest.raises(ServerError):
        policy.call(fn, "POST")
    assert len(calls) == 1


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_idempotent_writes_are_retried_after_a_timeout(method):
    policy, _ = make_policy()
    fn, calls = failing([TransportError("no answer", sent=True)])
    assert policy.call(fn, method) == "ok"
    assert len(calls) == 2


def test_retry_after_replaces_the_backoff():
    policy, slept = make_policy(initial_seconds=0.01)
    fn, _ = failing([RateLimitedError("slow down", retry_after=7)])
    policy.call(fn, "GET")
    assert slept == [7]


def test_retry_after_beyond_the_limit_gives_up_instead_of_retrying_early():
    policy, slept = make_policy(max_retry_after_seconds=60)
    fn, calls = failing([RateLimitedError("slow down", retry_after=3600)])
    with pytest.raises(RateLimitedError):
        policy.call(fn, "GET")
    assert slept == [] and len(calls) == 1


def test_retry_after_on_a_server_error_is_honoured():
    policy, slept = make_policy(initial_seconds=0.01)
    error = ServerError("maintenance", 503)
    error.retry_after = 9
    fn, _ = failing([error])
    policy.call(fn, "GET")
    assert slept == [9]


def test_backoff_grows_and_stays_under_its_cap():
    policy = RetryPolicy(initial_seconds=1, max_backoff_seconds=8, rng=random.Random(3))
    ceilings = [min(8, 2 ** (n - 1)) for n in range(1, 8)]
    waits = [policy.wait_seconds(n, ServerError("x", 500)) for n in range(1, 8)]
    assert all(0 <= w <= c for w, c in zip(waits, ceilings, strict=True))
    assert max(waits[4:]) > 1  # later waits reach beyond the first ceiling


def test_attempts_are_bounded():
    policy, _ = make_policy(max_attempts=3)
    fn, calls = failing([ServerError("x", 500)] * 10)
    with pytest.raises(ServerError):
        policy.call(fn, "GET")
    assert len(calls) == 3


def test_total_time_is_bounded():
    """No new try starts after max_seconds, even with attempts left (time is simulated)."""
    clock = [1000.0]

    def sleep(seconds):
        clock[0] += seconds
    policy = RetryPolicy(max_attempts=100, max_seconds=10, initial_seconds=4, max_backoff_seconds=4,
                         sleep=sleep, rng=random.Random(0))
    fn, calls = failing([ServerError("x", 500)] * 100)
    with mock.patch("time.monotonic", lambda: clock[0]):
        with pytest.raises(ServerError):
            policy.call(fn, "GET")
    assert clock[0] - 1000.0 <= 10 + 4
    assert 2 <= len(calls) < 100
