import os
from pathlib import Path

import pytest

from skylab_watch.watch.filters import DEFAULT_EXCLUDE
from skylab_watch.watch.scan import RootUnavailable, root_available, scan_tree, stat_candidate


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_scan_lists_nested_files_with_posix_paths_sizes_and_mtimes(tmp_path):
    _touch(tmp_path / "a.jpg", b"12345")
    _touch(tmp_path / "s1" / "deep" / "b.jpg")
    found = {f.rel_path: f for f in scan_tree(tmp_path, True, (), DEFAULT_EXCLUDE)}
    assert set(found) == {"a.jpg", "s1/deep/b.jpg"}
    assert found["a.jpg"].size == 5
    assert found["a.jpg"].mtime_ns == os.stat(tmp_path / "a.jpg").st_mtime_ns


def test_non_recursive_scan_stays_at_top_level(tmp_path):
    _touch(tmp_path / "a.jpg")
    _touch(tmp_path / "s1" / "b.jpg")
    assert [f.rel_path for f in scan_tree(tmp_path, False)] == ["a.jpg"]


def test_scan_skips_excluded_folders_and_applies_include(tmp_path):
    _touch(tmp_path / ".sync" / "a.jpg")
    _touch(tmp_path / "s" / ".hidden" / "b.jpg")
    _touch(tmp_path / "s" / "c.jpg.part")
    _touch(tmp_path / "s" / "notes.txt")
    _touch(tmp_path / "s" / "d.JPG")
    found = {f.rel_path for f in scan_tree(tmp_path, True, ("*.jpg",), DEFAULT_EXCLUDE)}
    assert found == {"s/d.JPG"}


def test_scan_does_not_follow_symlinked_files_or_folders(tmp_path):
    outside = tmp_path / "outside"
    _touch(outside / "secret.jpg")
    root = tmp_path / "root"
    _touch(root / "real.jpg")
    (root / "linked_dir").symlink_to(outside, target_is_directory=True)
    (root / "linked.jpg").symlink_to(outside / "secret.jpg")
    (root / "loop").symlink_to(root, target_is_directory=True)
    assert {f.rel_path for f in scan_tree(root, True)} == {"real.jpg"}


def test_scan_of_a_two_thousand_file_tree_finds_every_file(tmp_path):
    expected = set()
    for folder in range(20):
        sub = tmp_path / f"f{folder:02d}"
        sub.mkdir()
        for n in range(100):
            (sub / f"IMG_{n:04d}.jpg").write_bytes(b"")
            expected.add(f"f{folder:02d}/IMG_{n:04d}.jpg")
    assert {f.rel_path for f in scan_tree(tmp_path, True, (), DEFAULT_EXCLUDE)} == expected


def test_missing_root_raises_root_unavailable_at_the_call(tmp_path):
    with pytest.raises(RootUnavailable) as info:
        scan_tree(tmp_path / "unmounted", True)
    assert isinstance(info.value, OSError)
    assert "missing" in info.value.strerror


def test_root_available_gives_reasons(tmp_path):
    assert root_available(tmp_path) is None
    assert root_available(tmp_path / "gone") == "the folder is missing (unmounted share?)"
    (tmp_path / "file").write_bytes(b"")
    assert root_available(tmp_path / "file") is not None


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_unreadable_root_is_reported_with_permission_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        assert root_available(locked) == "the folder cannot be read: Permission denied"
    finally:
        locked.chmod(0o755)


def test_stat_candidate_returns_none_for_missing_dirs_and_symlinks(tmp_path):
    _touch(tmp_path / "a.jpg", b"abc")
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.jpg").symlink_to(tmp_path / "a.jpg")
    (tmp_path / "linkdir").symlink_to(tmp_path / "sub", target_is_directory=True)
    _touch(tmp_path / "sub" / "b.jpg")
    stat = stat_candidate(tmp_path, "a.jpg")
    assert stat is not None and stat.size == 3 and stat.rel_path == "a.jpg"
    assert stat_candidate(tmp_path, "missing.jpg") is None
    assert stat_candidate(tmp_path, "sub") is None
    assert stat_candidate(tmp_path, "link.jpg") is None
    assert stat_candidate(tmp_path, "linkdir/b.jpg") is None
    assert stat_candidate(tmp_path, "sub/b.jpg") is not None
