"""Tests of skylab_watch.outputs: mirrored paths, collision-safe names, atomic writes and moves, on real files."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from pathlib import Path

import pyvips
import pytest
from support import make_image

from skylab_watch import outputs
from skylab_watch.imaging import ImageError, OutputPlan, check_decodes, load_checked, save, write_output
from skylab_watch.outputs import (
    free_name, fsync_directory, mirrored_path, move_atomically, remove_stale_temps,
    sha256_file, temp_path_for, write_atomically,
)


def never(_path: Path) -> bool:
    """A may_replace callback for files the daemon did not write."""
    return False


def always(_path: Path) -> bool:
    """A may_replace callback for files the daemon wrote itself."""
    return True


def writer(data: bytes):
    """Return a write callback that writes `data`."""
    return lambda sink: sink.write(data)


def leftovers(folder: Path) -> list[str]:
    """Return the names of temp files left in a folder."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".skylab-part"))


# --- mirrored_path / temp_path_for ----------------------------------------------------

def test_mirrored_path_keeps_subfolders_and_takes_new_name(tmp_path: Path):
    assert mirrored_path(tmp_path / "out", "a/b/IMG_1.jpg", "IMG_1.png") == tmp_path / "out/a/b/IMG_1.png"
    assert mirrored_path(tmp_path, "IMG_1.jpg", "IMG_1.png") == tmp_path / "IMG_1.png"


@pytest.mark.parametrize("rel", ["../x/IMG_1.jpg", "/etc/IMG_1.jpg", "a/../../IMG_1.jpg"])
def test_mirrored_path_refuses_to_leave_the_root(tmp_path: Path, rel: str):
    with pytest.raises(ValueError):
        mirrored_path(tmp_path, rel, "IMG_1.png")


def test_temp_path_is_hidden_beside_final_short_and_deterministic(tmp_path: Path):
    final = tmp_path / "a" / "IMG_1.png"
    temp = temp_path_for(final, "dl")
    assert temp.parent == tmp_path / "a"
    assert re.fullmatch(r"\.skw-[0-9a-f]{12}\.skylab-part", temp.name)
    assert temp_path_for(final, "dl") == temp != temp_path_for(final, "w")
    assert temp != temp_path_for(final.with_name("IMG_2.png"), "dl")


def test_temp_name_stays_short_whatever_the_final_name(tmp_path: Path):
    long_final = tmp_path / ("x" * 250 + " (a background label of many words).png")
    assert len(temp_path_for(long_final, "12345").name.encode()) == 29


# --- free_name ---------------------------------------------------------------------------

def test_free_name_returns_path_when_absent(tmp_path: Path):
    assert free_name(tmp_path / "IMG_1.png", never) == tmp_path / "IMG_1.png"


def test_free_name_numbers_an_unowned_existing_file(tmp_path: Path):
    (tmp_path / "IMG_1.png").write_bytes(b"user's file")
    assert free_name(tmp_path / "IMG_1.png", never) == tmp_path / "IMG_1 (1).png"


def test_free_name_reuses_an_owned_file(tmp_path: Path):
    (tmp_path / "IMG_1.png").write_bytes(b"ours")
    assert free_name(tmp_path / "IMG_1.png", always) == tmp_path / "IMG_1.png"


def test_free_name_follows_the_chain(tmp_path: Path):
    for name in ("IMG_1.png", "IMG_1 (1).png"):
        (tmp_path / name).write_bytes(b"x")
    assert free_name(tmp_path / "IMG_1.png", never) == tmp_path / "IMG_1 (2).png"


def test_free_name_reuses_an_owned_numbered_file(tmp_path: Path):
    for name in ("IMG_1.png", "IMG_1 (1).png", "IMG_1 (2).png"):
        (tmp_path / name).write_bytes(b"x")
    owned = tmp_path / "IMG_1 (1).png"
    assert free_name(tmp_path / "IMG_1.png", lambda p: p == owned) == owned


def test_free_name_treats_a_dangling_symlink_as_taken(tmp_path: Path):
    (tmp_path / "IMG_1.png").symlink_to(tmp_path / "missing")
    assert free_name(tmp_path / "IMG_1.png", never) == tmp_path / "IMG_1 (1).png"


# --- write_atomically --------------------------------------------------------------------

def test_write_atomically_creates_folders_and_returns_size_and_hash(tmp_path: Path):
    final = tmp_path / "a" / "b" / "IMG_1.png"
    data = b"complete content" * 100
    size, digest = write_atomically(final, writer(data))
    assert final.read_bytes() == data
    assert (size, digest) == (len(data), hashlib.sha256(data).hexdigest())
    assert leftovers(final.parent) == []


def test_write_atomically_replaces_an_owned_file_whole(tmp_path: Path):
    final = tmp_path / "IMG_1.png"
    final.write_bytes(b"old")
    write_atomically(final, writer(b"new"))
    assert final.read_bytes() == b"new"


def test_failed_check_leaves_no_final_and_no_temp(tmp_path: Path):
    final = tmp_path / "IMG_1.png"
    with pytest.raises(ImageError):
        write_atomically(final, writer(b"not a png"), check=load_checked)
    assert not final.exists()
    assert leftovers(tmp_path) == []


def test_check_sees_the_written_temp(tmp_path: Path):
    final = tmp_path / "IMG_1.png"
    image = (pyvips.Image.black(8, 8) + [1, 2, 3]).cast("uchar").copy(interpretation="srgb")
    seen: list[list[str]] = []

    def check(fd: int) -> None:
        seen.append(os.listdir(tmp_path))
        check_decodes(fd)

    write_atomically(final, lambda sink: save(image, sink, "png"), tag="dl", check=check)
    assert seen == [[temp_path_for(final, "dl").name]]
    assert load_checked(final).width == 8


def test_camera_size_output_written_through_a_temp_is_checked_and_replaces_the_old_file(tmp_path: Path):
    result = make_image(tmp_path / "studio" / "IMG_1.png", 4000, 3000, seed=3)
    final = tmp_path / "out" / "IMG_1.jpg"
    make_image(final, 64, 48)  # the daemon's own earlier output, to be replaced whole
    plan = OutputPlan(None, "jpg", "retouched")
    size, digest = write_atomically(final, lambda sink: write_output(plan, result, [], sink),
                                    tag="7", check=check_decodes)
    written = pyvips.Image.new_from_file(str(final))
    assert (written.width, written.height, written.get("vips-loader")) == (4000, 3000, "jpegload")
    assert (size, digest) == (final.stat().st_size, hashlib.sha256(final.read_bytes()).hexdigest())
    assert leftovers(final.parent) == []


def test_camera_size_output_failing_its_decode_check_keeps_the_old_file(tmp_path: Path):
    whole = make_image(tmp_path / "whole.png", 4000, 3000).read_bytes()
    final = tmp_path / "IMG_1.png"
    final.write_bytes(b"the earlier output")
    with pytest.raises(ImageError):
        write_atomically(final, writer(whole[: len(whole) - 200]), check=check_decodes)
    assert final.read_bytes() == b"the earlier output"
    assert leftovers(tmp_path) == []


def test_failed_write_leaves_no_final_and_no_temp(tmp_path: Path):
    final = tmp_path / "IMG_1.png"

    def broken(sink) -> None:
        sink.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        write_atomically(final, broken)
    assert not final.exists()
    assert leftovers(tmp_path) == []


def interrupted_big_write(sink) -> None:
    """Write 4 MiB in chunks and die halfway, like a download cut off mid-stream."""
    for index in range(64):
        if index == 32:
            raise ConnectionError("connection reset mid-download")
        sink.write(bytes([index]) * 65536)


def test_interrupted_big_write_never_appears_under_final_name(tmp_path: Path):
    final = tmp_path / "big.jpg"
    with pytest.raises(ConnectionError):
        write_atomically(final, interrupted_big_write)
    assert not final.exists()
    assert leftovers(tmp_path) == []


def test_interrupted_write_keeps_the_previous_file_intact(tmp_path: Path):
    final = tmp_path / "big.jpg"
    old = b"previous complete output" * 1000
    final.write_bytes(old)
    with pytest.raises(ConnectionError):
        write_atomically(final, interrupted_big_write)
    assert final.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_retry_overwrites_a_stale_temp_from_a_crash(tmp_path: Path):
    final = tmp_path / "IMG_1.png"
    stale = temp_path_for(final, "w")
    stale.write_bytes(b"left by a crash" * 1000)
    write_atomically(final, writer(b"fresh"))
    assert final.read_bytes() == b"fresh"
    assert not stale.exists()


# --- names too long, links in the way ------------------------------------------------------

def test_a_final_name_over_name_max_fails_before_anything_is_written(tmp_path: Path):
    final = tmp_path / "out" / ("x" * 250 + " (beach).jpg")
    with pytest.raises(OSError) as caught:
        write_atomically(final, writer(b"never written"), root=tmp_path / "out")
    assert caught.value.errno == errno.ENAMETOOLONG
    assert caught.value.filename == str(final) and "262 bytes" in caught.value.strerror
    assert list((tmp_path / "out").iterdir()) == []


def test_a_final_name_of_exactly_name_max_is_written_through_a_short_temp(tmp_path: Path):
    final = tmp_path / ("x" * 251 + ".png")
    write_atomically(final, writer(b"fits"), tag="123456789")
    assert final.read_bytes() == b"fits"


def test_the_output_root_itself_may_be_a_link(tmp_path: Path):
    (tmp_path / "real").mkdir()
    (tmp_path / "root").symlink_to(tmp_path / "real")
    write_atomically(tmp_path / "root" / "a" / "IMG_1.png", writer(b"x"), root=tmp_path / "root")
    assert (tmp_path / "real" / "a" / "IMG_1.png").read_bytes() == b"x"


@pytest.mark.parametrize("linked", ["a", "a/b"])
def test_a_linked_folder_below_the_root_is_refused_and_nothing_is_written_through_it(tmp_path: Path, linked: str):
    root, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    (root / linked).parent.mkdir(parents=True)
    (root / linked).symlink_to(outside)
    with pytest.raises(outputs.LinkInTheWay) as caught:
        write_atomically(root / "a" / "b" / "c" / "IMG_1.png", writer(b"x"), root=root)
    assert caught.value.filename == str(root / linked)
    assert list(outside.iterdir()) == []


def test_a_link_at_the_final_name_is_refused_and_its_target_untouched(tmp_path: Path):
    target = tmp_path / "target.png"
    target.write_bytes(b"someone else's")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "IMG_1.png").symlink_to(target)
    with pytest.raises(outputs.LinkInTheWay):
        write_atomically(tmp_path / "out" / "IMG_1.png", writer(b"x"), root=tmp_path / "out")
    assert target.read_bytes() == b"someone else's"
    assert (tmp_path / "out" / "IMG_1.png").is_symlink() and leftovers(tmp_path / "out") == []


def test_a_link_planted_at_the_temp_name_is_replaced_never_written_through(tmp_path: Path):
    target = tmp_path / "target"
    target.write_bytes(b"keep me")
    final = tmp_path / "out" / "IMG_1.png"
    final.parent.mkdir()
    temp_path_for(final, "w").symlink_to(target)
    write_atomically(final, writer(b"new"))
    assert target.read_bytes() == b"keep me" and final.read_bytes() == b"new"


def test_a_file_where_a_folder_must_go_is_a_disk_error_naming_the_full_path(tmp_path: Path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_bytes(b"a file, not a folder")
    with pytest.raises(OSError) as caught:
        write_atomically(tmp_path / "out" / "a" / "IMG_1.png", writer(b"x"), root=tmp_path / "out")
    assert not isinstance(caught.value, outputs.LinkInTheWay)
    assert caught.value.errno == errno.ENOTDIR and caught.value.filename == str(tmp_path / "out" / "a")


# --- small helpers ------------------------------------------------------------------------

def test_sha256_file_matches_hashlib(tmp_path: Path):
    data = os.urandom(3 * (1 << 20) + 7)  # spans several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_fsync_directory_accepts_a_real_folder(tmp_path: Path):
    fsync_directory(tmp_path)  # must not raise
    fsync_directory(tmp_path / "missing")  # unopenable folders are skipped, not fatal


def test_remove_stale_temps_deletes_only_temps(tmp_path: Path):
    (tmp_path / ".a.png.w.skylab-part").write_bytes(b"x")
    (tmp_path / ".b.jpg.dl.skylab-part").write_bytes(b"x")
    (tmp_path / "keep.png").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ".c.png.w.skylab-part").write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png", "sub"]
    assert remove_stale_temps(tmp_path, recursive=True) == 1
    assert list((tmp_path / "sub").iterdir()) == []


# --- move_atomically ----------------------------------------------------------------------

def original(folder: Path, rel: str, data: bytes = b"original bytes") -> Path:
    """Create an input file at folder/rel and return its path."""
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_move_mirrors_subfolders_and_removes_source(tmp_path: Path):
    src = original(tmp_path / "in", "a/b/IMG_1.jpg")
    dest = move_atomically(src, tmp_path / "archive", "a/b/IMG_1.jpg")
    assert dest == tmp_path / "archive" / "a" / "b" / "IMG_1.jpg"
    assert dest.read_bytes() == b"original bytes"
    assert not src.exists()


def test_move_into_an_archive_with_a_linked_subfolder_is_refused_and_the_original_stays(tmp_path: Path):
    src = original(tmp_path / "in", "a/IMG_1.jpg")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "archive").mkdir()
    os.symlink(elsewhere, tmp_path / "archive" / "a")
    with pytest.raises(outputs.LinkInTheWay, match="archive/a"):
        move_atomically(src, tmp_path / "archive", "a/IMG_1.jpg")
    assert src.read_bytes() == b"original bytes" and not any(elsewhere.iterdir())


def test_move_never_overwrites_an_existing_file(tmp_path: Path):
    src = original(tmp_path / "in", "a/IMG_1.jpg", b"new")
    original(tmp_path / "archive", "a/IMG_1.jpg", b"older archived copy")
    dest = move_atomically(src, tmp_path / "archive", "a/IMG_1.jpg")
    assert dest.name == "IMG_1 (1).jpg"
    assert dest.read_bytes() == b"new"
    assert (tmp_path / "archive" / "a" / "IMG_1.jpg").read_bytes() == b"older archived copy"


def test_move_across_filesystems_copies_before_removing_source(tmp_path: Path, monkeypatch):
    src = original(tmp_path / "in", "IMG_1.jpg", b"x" * 100_000)
    real_link = os.link
    calls: list[tuple[str, str]] = []

    def link(a, b):
        calls.append((str(a), str(b)))
        if Path(a) == src:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        assert src.exists(), "source removed before the copy was in place"
        return real_link(a, b)

    monkeypatch.setattr(outputs.os, "link", link)
    dest = move_atomically(src, tmp_path / "archive", "IMG_1.jpg")
    assert dest.read_bytes() == b"x" * 100_000
    assert not src.exists()
    assert calls[-1][0].endswith(".skylab-part")  # published from a flushed temp
    assert leftovers(dest.parent) == []


def test_failed_cross_filesystem_copy_keeps_source_and_leaves_nothing(tmp_path: Path, monkeypatch):
    src = original(tmp_path / "in", "IMG_1.jpg")

    def no_link(a, b):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def failing_copy(a, b):
        Path(b).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(outputs.os, "link", no_link)
    monkeypatch.setattr(outputs.shutil, "copy2", failing_copy)
    with pytest.raises(OSError, match="No space"):
        move_atomically(src, tmp_path / "archive", "IMG_1.jpg")
    assert src.read_bytes() == b"original bytes"
    assert list((tmp_path / "archive").iterdir()) == []


def test_move_without_hard_links_still_refuses_to_overwrite(tmp_path: Path, monkeypatch):
    src = original(tmp_path / "in", "IMG_1.jpg", b"new")
    original(tmp_path / "archive", "IMG_1.jpg", b"old")

    def unsupported(a, b):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(outputs.os, "link", unsupported)
    dest = move_atomically(src, tmp_path / "archive", "IMG_1.jpg")
    assert dest.name == "IMG_1 (1).jpg" and dest.read_bytes() == b"new"
    assert (tmp_path / "archive" / "IMG_1.jpg").read_bytes() == b"old"
    assert not src.exists()


def test_move_after_a_crash_between_link_and_unlink_adopts_its_own_link(tmp_path):
    from skylab_watch.outputs import move_atomically
    src = tmp_path / "in" / "a" / "IMG.jpg"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"original")
    archived = tmp_path / "archive" / "a" / "IMG.jpg"
    archived.parent.mkdir(parents=True)
    os.link(src, archived)  # the earlier run got this far, then died
    assert move_atomically(src, tmp_path / "archive", "a/IMG.jpg") == archived
    assert not src.exists()
    assert sorted(p.name for p in archived.parent.iterdir()) == ["IMG.jpg"]
