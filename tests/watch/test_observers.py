import errno
import os
import shutil

import pytest
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.inotify_c import InotifyFD

from skylab_watch.watch import observers
from skylab_watch.watch.filters import DEFAULT_EXCLUDE, is_candidate
from skylab_watch.watch.observers import FolderWatcher, count_folders, inotify_watch_limit
from skylab_watch.watch.scan import RootUnavailable

from .helpers import Recorder, wait_until

MODES = ["native", "polling"]

# watchdog itself warns when `mkdir -p` races its own recursive watch registration; harmless.
pytestmark = pytest.mark.filterwarnings("ignore:Callback with id:RuntimeWarning")


@pytest.fixture
def make_watcher(tmp_path):
    """Build started watchers on tmp_path/root and stop them all afterwards."""
    made = []

    def make(mode, recursive=True, root=None):
        root = root or tmp_path / "root"
        root.mkdir(exist_ok=True)
        recorder = Recorder()
        watcher = FolderWatcher("packshots", root, recursive, mode, recorder, poll_interval=0.1)
        made.append(watcher)
        watcher.start()
        return watcher, recorder

    yield make
    for watcher in made:
        watcher.stop()


@pytest.mark.parametrize("mode", MODES)
def test_created_file_is_reported(make_watcher, mode):
    watcher, seen = make_watcher(mode)
    assert watcher.mode == mode and watcher.is_alive()
    (watcher.root / "IMG_0001.jpg").write_bytes(b"data")
    assert wait_until(lambda: "IMG_0001.jpg" in seen.seen())


@pytest.mark.parametrize("mode", MODES)
def test_file_renamed_into_place_is_reported_under_its_final_name(make_watcher, mode):
    watcher, seen = make_watcher(mode)
    (watcher.root / "s1").mkdir()
    assert wait_until(lambda: watcher.is_alive())
    temp = watcher.root / "s1" / "IMG_0002.jpg.part"
    temp.write_bytes(b"partial")
    if mode == "polling":  # let one snapshot see the temp file, so the change is a move
        assert wait_until(lambda: "s1/IMG_0002.jpg.part" in seen.seen())
    temp.rename(watcher.root / "s1" / "IMG_0002.jpg")
    assert wait_until(lambda: "s1/IMG_0002.jpg" in seen.seen())
    candidates = {p for p in seen.seen() if is_candidate(p, (), DEFAULT_EXCLUDE)}
    assert candidates == {"s1/IMG_0002.jpg"}


@pytest.mark.parametrize("mode", MODES)
def test_folder_moved_in_with_files_reports_each_file(make_watcher, tmp_path, mode):
    watcher, seen = make_watcher(mode)
    staging = tmp_path / "staging" / "day1"
    (staging / "deep").mkdir(parents=True)
    (staging / "a.jpg").write_bytes(b"a")
    (staging / "deep" / "b.jpg").write_bytes(b"b")
    staging.rename(watcher.root / "day1")
    assert wait_until(lambda: {"day1/a.jpg", "day1/deep/b.jpg"} <= seen.seen())


@pytest.mark.parametrize("mode", MODES)
def test_nested_folder_created_then_filled_is_reported(make_watcher, mode):
    watcher, seen = make_watcher(mode)
    nested = watcher.root / "s2" / "deeper"
    nested.mkdir(parents=True)
    (nested / "c.jpg").write_bytes(b"c")
    assert wait_until(lambda: "s2/deeper/c.jpg" in seen.seen())


@pytest.mark.parametrize("mode", MODES)
def test_files_through_a_symlinked_folder_are_not_reported(make_watcher, tmp_path, mode):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked").symlink_to(outside, target_is_directory=True)
    watcher, seen = make_watcher(mode)
    (outside / "secret.jpg").write_bytes(b"s")
    (root / "after.jpg").write_bytes(b"a")
    assert wait_until(lambda: "after.jpg" in seen.seen())
    if mode == "polling":  # give the snapshot after the secret write a second chance to misbehave
        before = len(seen.paths)
        (root / "after2.jpg").write_bytes(b"a")
        assert wait_until(lambda: len(seen.paths) > before)
    assert not any(p.startswith("linked") for p in seen.seen())


def test_non_recursive_watch_ignores_subfolders(make_watcher):
    watcher, seen = make_watcher("native", recursive=False)
    (watcher.root / "sub").mkdir()
    (watcher.root / "sub" / "x.jpg").write_bytes(b"x")
    (watcher.root / "top.jpg").write_bytes(b"t")
    assert wait_until(lambda: "top.jpg" in seen.seen())
    assert not any("/" in p for p in seen.seen())


@pytest.mark.parametrize("mode", MODES)
def test_ensure_running_restarts_a_dead_observer(make_watcher, mode, caplog):
    watcher, seen = make_watcher(mode)
    assert watcher.ensure_running() is False  # healthy: nothing to do
    watcher._observer.stop()  # kill its threads behind the watcher's back
    watcher._observer.join(5)
    assert not watcher.is_alive()
    assert watcher.ensure_running() is True
    assert watcher.is_alive()
    assert "stopped unexpectedly" in caplog.text
    (watcher.root / "after_restart.jpg").write_bytes(b"x")
    assert wait_until(lambda: "after_restart.jpg" in seen.seen())


@pytest.mark.parametrize("mode", MODES)
def test_watcher_survives_its_root_vanishing_and_restarts_when_back(make_watcher, mode):
    watcher, seen = make_watcher(mode)
    shutil.rmtree(watcher.root)
    assert wait_until(lambda: not watcher.is_alive())
    assert watcher.ensure_running() is False  # the root is missing: nothing to restart yet
    with pytest.raises(RootUnavailable):
        watcher.restart()
    watcher.root.mkdir()
    watcher.restart()
    assert watcher.is_alive()
    (watcher.root / "back.jpg").write_bytes(b"x")
    assert wait_until(lambda: "back.jpg" in seen.seen())


def test_start_on_a_missing_root_raises_root_unavailable(tmp_path):
    watcher = FolderWatcher("w", tmp_path / "nope", True, "native", Recorder())
    with pytest.raises(RootUnavailable, match="missing"):
        watcher.start()
    assert not watcher.is_alive()


def test_inotify_limit_at_start_falls_back_to_polling(make_watcher, monkeypatch, caplog):
    def refuse(self):
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    monkeypatch.setattr(InotifyObserver, "start", refuse)
    watcher, seen = make_watcher("native")
    assert watcher.mode == "polling" and watcher.requested_mode == "native"
    assert "fs.inotify.max_user_watches" in caplog.text
    (watcher.root / "still_seen.jpg").write_bytes(b"x")
    assert wait_until(lambda: "still_seen.jpg" in seen.seen())


def test_tree_larger_than_the_inotify_limit_is_polled_not_partly_watched(make_watcher, tmp_path, monkeypatch):
    root = tmp_path / "root"
    for name in ("a", "b", "c"):
        (root / name).mkdir(parents=True)
    monkeypatch.setattr(observers, "inotify_watch_limit", lambda: 2)
    watcher, seen = make_watcher("native")
    assert watcher.mode == "polling"
    (root / "c" / "x.jpg").write_bytes(b"x")
    assert wait_until(lambda: "c/x.jpg" in seen.seen())


def test_subfolder_hitting_the_inotify_limit_falls_back_to_polling(make_watcher, tmp_path, monkeypatch):
    # watchdog silently skips subfolders it cannot watch; the watcher must notice and poll instead.
    root = tmp_path / "root"
    for name in ("a", "b", "c"):
        (root / name).mkdir(parents=True)
    real_add = InotifyFD.add_callback

    def add_until_limit(self, path, *args, **kwargs):
        if path.endswith(b"/c"):
            raise OSError(errno.ENOSPC, "inotify watch limit reached")
        return real_add(self, path, *args, **kwargs)

    monkeypatch.setattr(InotifyFD, "add_callback", add_until_limit)
    watcher, seen = make_watcher("native")
    assert watcher.mode == "polling"
    (root / "c" / "x.jpg").write_bytes(b"x")
    assert wait_until(lambda: "c/x.jpg" in seen.seen())


def test_other_native_start_errors_are_not_mistaken_for_the_limit(tmp_path, monkeypatch):
    def broken(self):
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(InotifyObserver, "start", broken)
    (tmp_path / "root").mkdir()
    watcher = FolderWatcher("w", tmp_path / "root", True, "native", Recorder())
    with pytest.raises(OSError, match="disk on fire"):
        watcher.start()


def test_count_folders_counts_real_folders_only(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    assert count_folders(tmp_path, recursive=True) == 4  # root, a, a/b, c
    assert count_folders(tmp_path, recursive=False) == 1
    assert count_folders(tmp_path / "missing", recursive=True) == 0


def test_inotify_watch_limit_reads_proc():
    limit = inotify_watch_limit()
    if os.path.exists("/proc/sys/fs/inotify/max_user_watches"):
        assert isinstance(limit, int) and limit > 0
    else:
        assert limit is None


def test_unknown_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="polling"):
        FolderWatcher("w", tmp_path, True, "magic", Recorder())
