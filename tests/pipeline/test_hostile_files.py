"""Hostile and broken files in the watched folders (issue 11): bombs and slow files never stall the loop,
and what is uploaded is the very file that was validated, whatever is swapped in after."""

from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from pathlib import Path

import pytest
from bombs import make_png_bomb, make_slow_png
from daemon_helpers import DaemonThread, studio_photos, write_config
from stage_helpers import Stage
from support import make_image, wait_for

from skylab_watch.pipeline import intake, uploader
from skylab_watch.pipeline.discovery import WatchDiscovery
from skylab_watch.pipeline.inspections import Inspections
from skylab_watch.status import build_report, format_report
from skylab_watch.watch.scan import stat_candidate
from skylab_watch.watch.validate import NO_PERMISSION, header_readable, inspect_photo


def _rejected(ledger, watch: str, rel_path: str):
    photo = ledger.latest_version(watch, rel_path)
    return photo if photo is not None and photo.state == "rejected" else None


# ---------------------------------------------------------------- limits first, pixels later

def test_a_png_bomb_is_refused_from_its_header_in_milliseconds_naming_pixels_and_limit(tmp_path):
    bomb = make_png_bomb(tmp_path / "bomb.png")
    began = time.monotonic()
    result = inspect_photo(bomb)
    took = time.monotonic() - began
    assert not result.ok and not result.oversized
    assert "3600.0 MP (60000 x 60000" in result.reason and "at most 200 MP" in result.reason
    assert took < 0.5, f"the bomb took {took:.2f} s to refuse"


def test_settling_never_blocks_on_a_fifo_or_follows_a_link(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")  # opened without O_NONBLOCK this would wait for a writer for ever
    make_image(tmp_path / "real.jpg")
    os.symlink(tmp_path / "real.jpg", tmp_path / "link.jpg")
    assert not header_readable(tmp_path / "pipe.jpg")
    assert not header_readable(tmp_path / "link.jpg")
    assert header_readable(tmp_path / "real.jpg")
    assert inspect_photo(tmp_path / "pipe.jpg").reason == "not a regular file (a folder, link or device)"


def test_a_bomb_beside_a_control_photo_is_rejected_while_the_control_is_uploaded(tmp_path, plain_emulator):
    inbox = tmp_path / "in"
    cfg = write_config(tmp_path, plain_emulator.url, [
        {"name": "w", "input": inbox, "output": tmp_path / "out", "profile": "plain", "resize_oversized": True}])
    with DaemonThread(cfg) as d:
        make_png_bomb(inbox / "bomb.png")
        make_image(inbox / "control.jpg")
        began = time.monotonic()
        wait_for(lambda: any(p["name"].startswith("control") and p.get("md5") for p in studio_photos(plain_emulator)),
                 timeout=15, what="the control photo uploaded")
        took = time.monotonic() - began
        bomb = wait_for(lambda: _rejected(d.ledger, "w", "bomb.png"), timeout=5, what="the bomb rejected")
    assert "too many pixels" in bomb.reason and "60000 x 60000" in bomb.reason
    assert took < 10


def test_a_check_past_its_time_bound_is_rejected_while_the_loop_goes_on(tmp_path, plain_emulator):
    inbox = tmp_path / "in"
    cfg = write_config(tmp_path, plain_emulator.url, [
        {"name": "w", "input": inbox, "output": tmp_path / "out", "profile": "plain", "resize_oversized": True}])
    thread = DaemonThread(cfg)
    thread.daemon.inspections.seconds = 0.2  # an 8000 x 8000 PNG takes ~0.5-1.2 s to decode; a small JPEG ~5 ms
    with thread as d:
        make_slow_png(tmp_path / "slow.png", side=8000).rename(inbox / "slow.png")
        make_image(inbox / "control.jpg")
        wait_for(lambda: any(p["name"].startswith("control") and p.get("md5") for p in studio_photos(plain_emulator)),
                 timeout=15, what="the control photo uploaded")
        slow = wait_for(lambda: _rejected(d.ledger, "w", "slow.png"), timeout=5, what="the slow file rejected")
        assert time.monotonic() - d.daemon.heartbeat < 2, "the loop keeps coming round"
    assert "took longer than 0.2 s" in slow.reason


def test_a_file_settled_twice_while_its_check_runs_is_checked_once(tmp_path, plain_emulator):
    stage = Stage(tmp_path, plain_emulator.url)
    try:
        checks = Inspections(stage.ctx, size=1)
        watch = stage.ctx.watch("w")
        make_image(tmp_path / "w" / "in" / "a.jpg")
        look = stat_candidate(watch.input, "a.jpg")
        checks.submit(watch, look)
        checks.step()
        checks.submit(watch, look)  # the rescan saw it again while the first check runs
        checks.step()
        wait_for(lambda: (checks.step(), not checks.busy())[1], timeout=5, what="the checks done")
        versions = stage.ledger.photos_in_state("ready", watch="w")
        assert [p.rel_path for p in versions] == ["a.jpg"]
    finally:
        stage.close()


# ---------------------------------------------------------------- read what was validated

@pytest.fixture
def stage(tmp_path, plain_emulator):
    s = Stage(tmp_path, plain_emulator.url)
    yield s
    s.close()


def _validated(stage: Stage, name: str, seed: int = 0):
    """Drop a real photo and record it through the real intake (device and inode included)."""
    watch = stage.ctx.watch("w")
    make_image(watch.input / name, seed=seed)
    photo = intake.record_settled_file(stage.ctx, watch, stat_candidate(watch.input, name), 10.0)
    assert photo is not None and photo.state == "ready" and photo.inode is not None
    return photo


def _upload_within(stage: Stage, photo, seconds: float = 10.0) -> str:
    """Upload on a thread and fail (rather than hang the suite) if it does not return in time."""
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(uploader.upload_photo(stage.ctx, photo)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"the upload of {photo.rel_path} did not return within {seconds} s"
    return result[0]


def _sent_names(emulator) -> set[str]:
    return {p["name"] for p in studio_photos(emulator) if p.get("md5")}


@pytest.mark.parametrize("swap", ["symlink to /dev/zero", "fifo", "grown", "replaced by another file"])
def test_a_photo_swapped_after_validation_is_never_uploaded_and_the_stage_goes_on(stage, plain_emulator, swap):
    photo = _validated(stage, "a.jpg")
    other = _validated(stage, "b.jpg", seed=1)
    stage.created_job()
    path = stage.ctx.watch("w").input / "a.jpg"
    if swap == "symlink to /dev/zero":
        path.unlink()
        os.symlink("/dev/zero", path)
    elif swap == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif swap == "grown":
        with open(path, "ab") as handle:
            handle.write(b"\0" * 4096)
    else:
        make_image(stage.tmp / "elsewhere.jpg", seed=0).replace(path)  # same bytes, another inode
    assert _upload_within(stage, stage.photo(photo)) == "superseded"
    assert _upload_within(stage, stage.photo(other)) == "uploaded"
    sent = _sent_names(plain_emulator)
    assert stage.photo(other).studio_name in sent and stage.photo(photo).studio_name not in sent
    assert "changed" in stage.photo(photo).reason


def test_a_photo_recorded_before_device_and_inode_were_kept_is_checked_on_what_it_has(stage, plain_emulator):
    photo = stage.add_photo("old.jpg")  # a row as written before ledger v3: no device, no inode
    assert photo.inode is None
    stage.created_job()
    with open(stage.ctx.watch("w").input / "old.jpg", "ab") as handle:
        handle.write(b"more")
    assert _upload_within(stage, photo) == "superseded"


# ---------------------------------------------------------------- visible problems

def _discovery(stage: Stage) -> WatchDiscovery:
    return WatchDiscovery(stage.ctx.watch("w"), stage.ledger, queue.Queue())


def _deep_folders(root: Path, depth: int = 20, name_length: int = 220) -> list[str]:
    """Create folders nested so deep that their full path passes PATH_MAX (4096 bytes), with a photo at the
    bottom; made through folder descriptors, as only they can; return the folder names, top first."""
    names = [f"{level:02d}" + "d" * (name_length - 2) for level in range(depth)]
    photo = make_image(root.parent / "deep.jpg").read_bytes()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            os.mkdir(name, dir_fd=fd)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        out = os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, photo)
        os.close(out)
    finally:
        os.close(fd)
    assert len(str(root)) + sum(len(n) + 1 for n in names) > 4096
    return names


def _folder_notices(stage: Stage) -> dict[str, str]:
    return {key: message for key, (message, _since) in stage.ledger.notices().items() if key.startswith("folder:w:")}


def test_a_path_longer_than_path_max_is_a_notice_in_status_until_it_is_gone(stage):
    inbox = stage.ctx.watch("w").input
    names = _deep_folders(inbox)
    make_image(inbox / "control.jpg")
    discovery = _discovery(stage)
    discovery.rescan()
    assert "control.jpg" in discovery.tracker, "the rest of the watch is still scanned"
    notices = _folder_notices(stage)
    assert len(notices) == 1
    message = next(iter(notices.values()))
    assert message.startswith("w: cannot read the folder 00ddd") and "longer than the system allows" in message
    assert len(message) < 400, "the notice shows a shortened path"
    assert message in format_report(build_report(stage.ledger))
    shutil.rmtree(inbox / names[0])
    discovery.rescan()
    assert _folder_notices(stage) == {}, "the notice ends with its cause"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder whatever its mode, so chmod 000 cannot deny it")
def test_an_unreadable_folder_is_a_notice_cleared_when_it_reads_again(stage):
    private = stage.ctx.watch("w").input / "private"
    make_image(private / "a.jpg")
    private.chmod(0)
    discovery = _discovery(stage)
    try:
        discovery.rescan()
        assert "permission denied" in _folder_notices(stage)["folder:w:private"]
    finally:
        private.chmod(0o755)
    discovery.rescan()
    assert _folder_notices(stage) == {}
    assert "private/a.jpg" in discovery.tracker


# ---------------------------------------------------------------- a fixed permission is noticed

def _settle(discovery: WatchDiscovery, stage: Stage) -> list:
    """Let the tracked files settle and record them through the real intake; return the new rows."""
    wait_for(lambda: discovery.tracker.due(time.monotonic() + 60), timeout=5, what="tracked files")
    settled = discovery.tracker.poll(discovery.config.input, time.monotonic() + 60)
    return [intake.record_settled_file(stage.ctx, discovery.config, stat, 10.0) for stat in settled]


def test_a_file_refused_for_permission_is_looked_at_again_on_rescan_and_accepted(stage):
    # Root reads any file, so the refusal is recorded as intake records it; the rescan's part is all real.
    path = make_image(stage.ctx.watch("w").input / "a.jpg")
    info = path.stat()
    stage.ledger.add_photo("w", "a.jpg", info.st_size, info.st_mtime_ns, "", "rejected", reason=NO_PERMISSION)
    discovery = _discovery(stage)
    discovery.rescan()
    assert "a.jpg" in discovery.tracker, "same size and mtime, but a permission refusal is looked at again"
    (photo,) = _settle(discovery, stage)
    assert photo is not None and photo.state == "ready" and photo.version == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode, so chmod 000 cannot deny it")
def test_a_file_made_readable_by_chmod_is_accepted_at_the_next_rescan(stage):
    path = make_image(stage.ctx.watch("w").input / "a.jpg")
    path.chmod(0)
    discovery = _discovery(stage)
    discovery.rescan()
    (refused,) = _settle(discovery, stage)
    assert refused.state == "rejected" and refused.reason == NO_PERMISSION
    discovery.rescan()
    assert "a.jpg" not in discovery.tracker, "still unreadable: not tracked again (run --once must not wait)"
    path.chmod(0o644)
    discovery.rescan()
    (photo,) = _settle(discovery, stage)
    assert photo.state == "ready"
