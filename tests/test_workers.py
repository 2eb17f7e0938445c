"""The generic worker pool: one piece of work per key, outcomes handed back, a bounded shutdown."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from support import wait_for
from daemon_helpers import REPO

from skylab_watch.workers import KeyInFlight, PoolClosed, WorkerPool


def _reaped(pool: WorkerPool, count: int) -> dict:
    """Reap until `count` outcomes have come back; return them by key."""
    got: dict = {}
    wait_for(lambda: got.update(pool.reap()) or len(got) >= count, timeout=10, what=f"{count} outcomes")
    return got


def test_results_and_exceptions_come_back_by_key_to_the_reaping_thread():
    pool: WorkerPool[str] = WorkerPool(2, "t")
    pool.submit("ok", lambda a, b: a + b, 2, 3)
    pool.submit("bad", lambda: 1 / 0)
    got = _reaped(pool, 2)
    assert got["ok"] == 5
    assert isinstance(got["bad"], ZeroDivisionError)
    assert not pool.busy() and len(pool) == 0
    pool.shutdown(1)


def test_a_key_in_flight_is_refused_until_its_outcome_is_reaped():
    release = threading.Event()
    pool: WorkerPool[int] = WorkerPool(1, "t")
    pool.submit(7, release.wait, 10)
    with pytest.raises(KeyInFlight):
        pool.submit(7, print)
    assert pool.in_flight(7) and not pool.in_flight(8)
    release.set()
    wait_for(lambda: not pool.in_flight(7) or pool.reap(), timeout=10, what="the outcome")
    assert not pool.in_flight(7), "a finished key counts as in flight only until it is reaped"
    pool.submit(7, int, "1")
    assert _reaped(pool, 1) == {7: 1}
    pool.shutdown(1)


def test_no_more_than_size_pieces_of_work_run_at_once():
    running, peak, lock = [0], [0], threading.Lock()
    gate = threading.Event()

    def work() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        gate.wait(10)
        with lock:
            running[0] -= 1

    pool: WorkerPool[int] = WorkerPool(3, "t", capacity=10)
    for key in range(8):
        pool.submit(key, work)
    wait_for(lambda: running[0] == 3, timeout=10, what="three running")
    time.sleep(0.1)  # give a fourth thread the chance to start, if the pool allowed one
    assert peak[0] == 3 and len(pool) == 8 and pool.has_room()
    gate.set()
    assert len(_reaped(pool, 8)) == 8
    assert peak[0] == 3
    pool.shutdown(1)


def test_has_room_counts_everything_submitted_and_not_reaped():
    gate = threading.Event()
    pool: WorkerPool[int] = WorkerPool(1, "t")  # capacity 2
    pool.submit(1, gate.wait, 10)
    assert pool.has_room()
    pool.submit(2, gate.wait, 10)
    assert not pool.has_room()
    gate.set()
    _reaped(pool, 2)
    assert pool.has_room()
    pool.shutdown(1)


def test_background_work_runs_only_when_no_other_work_waits():
    gate = threading.Event()
    order: list[str] = []
    pool: WorkerPool[str] = WorkerPool(1, "t", capacity=10)
    pool.submit("blocker", gate.wait, 10)
    wait_for(lambda: pool.queued() == 0, timeout=5, what="the blocker running")
    pool.submit("later-1", order.append, "later-1", background=True)
    pool.submit("later-2", order.append, "later-2", background=True)
    pool.submit("urgent", order.append, "urgent")  # submitted last, runs first
    assert pool.in_flight("later-2") and pool.queued() == 3
    with pytest.raises(KeyInFlight):
        pool.submit("later-1", order.append, "again")
    gate.set()
    _reaped(pool, 4)
    assert order == ["urgent", "later-1", "later-2"]
    assert pool.queued() == 0 and not pool.in_flight("later-1")
    pool.shutdown(1)


def test_close_drops_background_work_too():
    gate = threading.Event()
    pool: WorkerPool[str] = WorkerPool(1, "t", capacity=10)
    pool.submit("running", gate.wait, 10)
    pool.submit("waiting", time.sleep, 0)
    pool.submit("idle-time", time.sleep, 0, background=True)
    wait_for(lambda: pool.queued() == 2, timeout=5, what="the first piece running")
    assert sorted(pool.close()) == ["idle-time", "waiting"]
    gate.set()
    pool.shutdown(5)


def test_shutdown_waits_for_quick_work_and_returns_nothing_abandoned():
    started_work = threading.Event()
    pool: WorkerPool[str] = WorkerPool(2, "t")
    pool.submit("a", lambda: started_work.set() or time.sleep(0.2))
    assert started_work.wait(5)
    started = time.monotonic()
    assert pool.shutdown(5) == []
    assert time.monotonic() - started < 2
    assert [k for k, _ in pool.reap()] == ["a"], "outcomes finished during the grace can still be reaped"


def test_shutdown_abandons_running_work_after_the_grace_and_drops_what_never_started():
    gate = threading.Event()
    pool: WorkerPool[str] = WorkerPool(1, "t")
    started_work = threading.Event()
    pool.submit("long", lambda: started_work.set() or gate.wait(30))
    pool.submit("queued", print, "never printed")
    assert started_work.wait(5)
    started = time.monotonic()
    abandoned = pool.shutdown(0.3)
    took = time.monotonic() - started
    assert sorted(abandoned) == ["long", "queued"]
    assert 0.25 <= took < 2
    with pytest.raises(PoolClosed):
        pool.submit("late", print)
    gate.set()


def test_work_left_running_never_holds_up_the_exit_of_the_process():
    """The reason the pool exists: ThreadPoolExecutor threads are joined at interpreter exit."""
    script = textwrap.dedent("""
        import time
        from skylab_watch.workers import WorkerPool
        pool = WorkerPool(2, "t")
        pool.submit(1, time.sleep, 60)
        pool.submit(2, time.sleep, 60)
        time.sleep(0.2)
        print(pool.shutdown(0.2))
    """)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                         cwd=str(REPO), env={"PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[1, 2]"
    assert time.monotonic() - started < 10


def test_the_pool_imports_nothing_of_the_domain():
    source = (REPO / "skylab_watch" / "workers.py").read_text()
    assert "from skylab_watch" not in source and "import skylab_watch" not in source
