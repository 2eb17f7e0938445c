import threading
import time

from skylab_watch.watch.scan import FileStat
from skylab_watch.watch.settle import SettleTracker

from .helpers import noise_image, wait_until, write_image


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_due_only_after_size_and_mtime_unchanged_for_settle_seconds():
    clock = FakeClock()
    tracker = SettleTracker(5.0, clock=clock)
    tracker.note(FileStat("a.jpg", 10, 1))
    clock.now += 4.9
    assert tracker.due() == []
    tracker.note(FileStat("a.jpg", 20, 2))  # grew: the clock restarts
    clock.now += 4.9
    assert tracker.due() == []
    tracker.note(FileStat("a.jpg", 20, 2))  # same: the clock keeps running
    clock.now += 0.2
    assert tracker.due() == [FileStat("a.jpg", 20, 2)]


def test_the_wait_to_the_next_due_file_counts_only_files_still_to_come_due():
    clock = FakeClock()
    tracker = SettleTracker(5.0, clock=clock)
    assert tracker.seconds_to_next_due() is None
    tracker.note(FileStat("a.jpg", 10, 1))
    clock.now += 2
    tracker.note(FileStat("b.jpg", 10, 1))
    assert tracker.seconds_to_next_due() == 3.0  # a.jpg, the earlier one
    clock.now += 3.5
    assert tracker.seconds_to_next_due() == 1.5  # a.jpg is due (held back if unreadable): b.jpg is next
    clock.now += 2
    assert tracker.seconds_to_next_due() is None  # both due: nothing to wake up early for


def test_forget_pending_and_contains():
    tracker = SettleTracker(1.0)
    tracker.note(FileStat("a.jpg", 1, 1))
    tracker.note(FileStat("b.jpg", 1, 1))
    assert "a.jpg" in tracker and tracker.pending() == 2
    tracker.forget("a.jpg")
    tracker.forget("never-seen.jpg")
    assert "a.jpg" not in tracker and tracker.pending() == 1


def test_poll_drops_vanished_files(tmp_path):
    clock = FakeClock()
    path = write_image(tmp_path / "a.jpg")
    tracker = SettleTracker(1.0, clock=clock)
    tracker.note(FileStat("a.jpg", path.stat().st_size, path.stat().st_mtime_ns))
    path.unlink()
    clock.now += 5
    assert tracker.poll(tmp_path) == []
    assert tracker.pending() == 0


def test_slowly_written_file_is_returned_only_once_stable(tmp_path):
    data = noise_image(300, 200).write_to_buffer(".jpg")
    chunks = [data[i : i + len(data) // 10 + 1] for i in range(0, len(data), len(data) // 10 + 1)]
    target = tmp_path / "slow.jpg"
    target.write_bytes(b"")
    done = threading.Event()

    def writer() -> None:
        with open(target, "ab") as handle:
            for chunk in chunks:
                handle.write(chunk)
                handle.flush()
                time.sleep(0.1)
        done.set()

    tracker = SettleTracker(0.3)
    tracker.note(FileStat("slow.jpg", 0, target.stat().st_mtime_ns))
    thread = threading.Thread(target=writer)
    thread.start()
    returned_while_growing = []
    while not done.is_set():
        returned_while_growing += tracker.poll(tmp_path)
        time.sleep(0.03)
    thread.join()
    assert returned_while_growing == []
    settled = []
    assert wait_until(lambda: settled.extend(tracker.poll(tmp_path)) or settled, timeout=5)
    assert settled[0].rel_path == "slow.jpg" and settled[0].size == len(data)
    assert tracker.pending() == 0  # handed over


def test_stable_but_unreadable_file_waits_then_is_released_for_rejection(tmp_path):
    clock = FakeClock()
    (tmp_path / "bad.jpg").write_bytes(b"not an image yet")
    tracker = SettleTracker(2.0, clock=clock)
    stat = (tmp_path / "bad.jpg").stat()
    tracker.note(FileStat("bad.jpg", stat.st_size, stat.st_mtime_ns))
    clock.now += 3
    assert tracker.poll(tmp_path) == []
    assert "bad.jpg" in tracker  # kept, re-checked next poll
    clock.now += 60  # grace is max(2 * 10, 60) seconds
    assert [s.rel_path for s in tracker.poll(tmp_path)] == ["bad.jpg"]


def test_unsupported_type_skips_the_header_wait(tmp_path):
    clock = FakeClock()
    (tmp_path / "notes.docx").write_bytes(b"PK not an image")
    tracker = SettleTracker(1.0, clock=clock)
    stat = (tmp_path / "notes.docx").stat()
    tracker.note(FileStat("notes.docx", stat.st_size, stat.st_mtime_ns))
    clock.now += 1.5
    assert [s.rel_path for s in tracker.poll(tmp_path)] == ["notes.docx"]
