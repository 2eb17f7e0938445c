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


def test_the_wait_to_the_next_due_file_counts_only_files_still_to_come_due(tmp_path):
    clock = FakeClock()
    (tmp_path / "a.jpg").write_bytes(b"not an image yet")
    (tmp_path / "b.jpg").write_bytes(b"not an image yet")
    tracker = SettleTracker(5.0, clock=clock, header_check=lambda path: False)

    def note(name: str) -> None:
        info = (tmp_path / name).stat()
        tracker.note(FileStat(name, info.st_size, info.st_mtime_ns))
    assert tracker.seconds_to_next_due() is None
    note("a.jpg")
    clock.now += 2
    note("b.jpg")
    assert tracker.seconds_to_next_due() == 3.0  # a.jpg, the earlier one
    clock.now += 3.5
    assert tracker.seconds_to_next_due() == 0.0  # a.jpg came due since the last poll: look now
    assert tracker.poll(tmp_path) == []  # ... and it is held back: its header is unreadable
    assert tracker.seconds_to_next_due() == 1.5  # so it no longer counts: b.jpg is next
    clock.now += 2
    assert tracker.seconds_to_next_due() == 0.0  # b.jpg came due since
    assert tracker.poll(tmp_path) == []
    assert tracker.seconds_to_next_due() is None  # both due and held: nothing to wake up early for


def test_steady_lists_files_that_look_finished_before_they_settle():
    clock = FakeClock()
    wall = {"ns": 10_000 * 10**9}
    tracker = SettleTracker(4.0, clock=clock, wall_clock_ns=lambda: wall["ns"])
    tracker.note(FileStat("copied-before.jpg", 10, wall["ns"] - 5 * 10**9))  # mtime 5 s old: looks finished
    tracker.note(FileStat("growing.jpg", 10, wall["ns"]))
    assert [s.rel_path for s in tracker.steady()] == ["copied-before.jpg"]
    clock.now += 0.9
    tracker.note(FileStat("growing.jpg", 20, wall["ns"] + 1))  # still written: its clock restarts
    clock.now += 0.9
    assert [s.rel_path for s in tracker.steady()] == ["copied-before.jpg"]
    clock.now += 0.2  # growing.jpg unchanged for 1.1 s, over a quarter of the settle time
    assert [s.rel_path for s in tracker.steady()] == ["copied-before.jpg", "growing.jpg"]
    clock.now += 2.5  # copied-before.jpg is due now: settling hands it over, it is no longer "ahead"
    assert [s.rel_path for s in tracker.steady()] == ["growing.jpg"]


def test_a_file_proven_by_a_check_skips_the_header_test(tmp_path):
    clock = FakeClock()
    (tmp_path / "a.jpg").write_bytes(b"header not readable by libvips")
    info = (tmp_path / "a.jpg").stat()
    looked = []
    tracker = SettleTracker(1.0, clock=clock, header_check=lambda path: looked.append(path) or False)
    tracker.note(FileStat("a.jpg", info.st_size, info.st_mtime_ns))
    clock.now += 1.5
    assert tracker.poll(tmp_path, proven=lambda stat: False) == []
    assert len(looked) == 1
    settled = tracker.poll(tmp_path, proven=lambda stat: stat.size == info.st_size)
    assert [s.rel_path for s in settled] == ["a.jpg"] and len(looked) == 1


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
