"""The one deadline thread behind every Guard: on time, in order, cancellable, bounded."""

import threading
import time

from skylab_watch.studio.deadlines import COMPACT_AFTER, DeadlineWatcher


def test_callbacks_run_once_their_deadline_has_come_earliest_first_even_if_added_later():
    watcher, ran, done = DeadlineWatcher(), [], threading.Event()
    start = time.monotonic()
    watcher.add(start + 0.4, lambda: (ran.append("late"), done.set()))
    watcher.add(start + 0.1, lambda: ran.append("early"))  # comes first: the sleeping thread must wake for it
    assert done.wait(5)
    assert ran == ["early", "late"]
    assert time.monotonic() - start >= 0.4


def test_a_cancelled_deadline_never_runs_and_a_failing_callback_does_not_stop_the_others():
    watcher, ran, done = DeadlineWatcher(), [], threading.Event()
    now = time.monotonic()
    cancelled = watcher.add(now + 0.05, lambda: ran.append("cancelled"))
    watcher.add(now + 0.05, lambda: 1 / 0)
    watcher.add(now + 0.15, lambda: (ran.append("after"), done.set()))
    watcher.cancel(cancelled)
    assert done.wait(5)
    assert ran == ["after"]


def test_deadlines_cancelled_long_before_they_are_due_do_not_pile_up():
    watcher = DeadlineWatcher()
    far = time.monotonic() + 3600
    for _ in range(COMPACT_AFTER * 10):
        watcher.cancel(watcher.add(far, lambda: None))
    assert watcher.pending() <= 2 * COMPACT_AFTER + 2


def test_a_cancelled_deadline_still_in_the_heap_keeps_nothing_alive():
    import gc
    import weakref

    class Held:
        """Stands for what a request's deadline keeps: its guard and sockets."""

    watcher, held = DeadlineWatcher(), Held()
    gone = weakref.ref(held)
    watcher.add(time.monotonic() + 3000, lambda: None)  # a live one in front: the cancelled one waits behind it
    watcher.cancel(watcher.add(time.monotonic() + 3600, lambda kept=held: None))
    del held
    gc.collect()
    assert watcher.pending() == 2, "still in the heap (it is far from due)"
    assert gone() is None, "but its callback, and what that held, is let go"
