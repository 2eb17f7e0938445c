"""One daemon per ledger: the lock file beside the ledger, its PID, and its release on death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from daemon_helpers import REPO

from skylab_watch.errors import SkylabWatchError
from skylab_watch.ledger import Ledger, LedgerLock, LedgerLocked
from skylab_watch.ledger.lock import lock_path


def test_a_second_holder_is_refused_with_the_pid_of_the_first(tmp_path):
    ledger = tmp_path / "ledger.sqlite3"
    with LedgerLock(ledger):
        assert lock_path(ledger).read_text().strip() == str(os.getpid())
        with pytest.raises(LedgerLocked) as refused:
            LedgerLock(ledger).acquire()
    assert refused.value.pid == os.getpid()
    assert f"PID {os.getpid()}" in str(refused.value)
    assert isinstance(refused.value, SkylabWatchError)


def test_the_lock_is_free_again_once_released(tmp_path):
    ledger = tmp_path / "ledger.sqlite3"
    first = LedgerLock(ledger)
    first.acquire()
    first.release()
    first.release()
    with LedgerLock(ledger):
        pass


def test_a_killed_holder_never_leaves_a_stale_lock(tmp_path):
    ledger = tmp_path / "ledger.sqlite3"
    script = ("import sys, time; from skylab_watch.ledger import LedgerLock; "
              f"LedgerLock({str(ledger)!r}).acquire(); print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=str(REPO), env={"PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LedgerLocked) as refused:
            LedgerLock(ledger).acquire()
        assert refused.value.pid == holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    with LedgerLock(ledger):
        assert lock_path(ledger).read_text().strip() == str(os.getpid())


def test_readers_open_the_ledger_while_the_lock_is_held(tmp_path):
    ledger_path = tmp_path / "ledger.sqlite3"
    with LedgerLock(ledger_path):
        ledger = Ledger(ledger_path)
        ledger.set_notice("k", "v")
        assert "k" in ledger.notices()
        ledger.close()


def test_the_ledger_lock_counts_each_wait_and_how_long_it_lasted():
    import threading
    import time

    from skylab_watch.ledger.db import TimedLock

    lock, entering = TimedLock(), threading.Event()

    def wait_for_it() -> None:
        entering.set()
        with lock:
            pass

    with lock:
        with lock:  # re-entrant: taken again by its holder without a wait
            pass
        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        assert entering.wait(5)
        time.sleep(0.2)  # holding the lock (not waiting on a condition): the waiter must wait this long
    waiter.join(5)
    assert (lock.taken, lock.waits) == (3, 1)
    assert lock.waited_seconds >= 0.05
