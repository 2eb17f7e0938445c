"""Checks run while files settle (issue 13): a file checked ahead that then settles exactly as it was checked
is recorded without a second check; one that changed, or was still being written when it was checked, is
checked again once settled and judged on what it is then."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import pytest
from stage_helpers import Stage
from support import make_image, wait_for

from skylab_watch.pipeline import intake
from skylab_watch.pipeline.inspections import Inspections
from skylab_watch.watch.scan import stat_candidate


@pytest.fixture
def stage(tmp_path, plain_emulator):
    s = Stage(tmp_path, plain_emulator.url)
    yield s
    s.close()


@pytest.fixture
def inspected(monkeypatch) -> collections.Counter:
    """How many times each file was inspected (the real inspection runs every time)."""
    counts: collections.Counter = collections.Counter()
    real = intake.inspect_photo

    def counting(path: Path, **options):
        counts[path.name] += 1
        return real(path, **options)
    monkeypatch.setattr(intake, "inspect_photo", counting)
    return counts


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _ahead_done(checks: Inspections) -> bool:
    checks.step()
    return checks.checking_ahead() == 0


def _recorded(checks: Inspections, stage: Stage, rel_path: str):
    checks.step()
    return stage.ledger.latest_version("w", rel_path)


def test_a_camera_size_photo_checked_ahead_and_settled_unchanged_is_checked_once(stage, inspected):
    checks = Inspections(stage.ctx, size=1)
    watch = stage.ctx.watch("w")
    path = make_image(watch.input / "a.jpg", 4000, 3000)
    look = stat_candidate(watch.input, "a.jpg")
    checks.look_ahead(watch, [look], settling={"a.jpg"})
    wait_for(lambda: _ahead_done(checks), timeout=30, what="the check ahead")
    assert checks.proven("w", look)
    assert stage.ledger.latest_version("w", "a.jpg") is None, "nothing is recorded before the file settles"
    checks.submit(watch, look)
    photo = wait_for(lambda: _recorded(checks, stage, "a.jpg"), timeout=10, what="the record")
    assert (photo.state, photo.md5, photo.width, photo.height) == ("ready", _md5(path), 4000, 3000)
    assert inspected["a.jpg"] == 1
    checks.close()


def test_a_file_changed_after_its_check_ahead_is_checked_again_as_it_settled(stage, inspected):
    checks = Inspections(stage.ctx, size=1)
    watch = stage.ctx.watch("w")
    path = make_image(watch.input / "a.jpg", 640, 480, seed=1)
    look = stat_candidate(watch.input, "a.jpg")
    checks.look_ahead(watch, [look], settling={"a.jpg"})
    wait_for(lambda: _ahead_done(checks), timeout=20, what="the check ahead")
    make_image(path, 800, 600, seed=2)  # a retake saved over it before it settled
    settled = stat_candidate(watch.input, "a.jpg")
    assert not checks.proven("w", settled)
    checks.submit(watch, settled)
    photo = wait_for(lambda: _recorded(checks, stage, "a.jpg"), timeout=20, what="the record")
    assert (photo.md5, photo.width, photo.size) == (_md5(path), 800, settled.size)
    assert inspected["a.jpg"] == 2
    checks.close()


def test_a_photo_still_being_written_when_checked_ahead_is_not_rejected_once_complete(stage, inspected):
    checks = Inspections(stage.ctx, size=1)
    watch = stage.ctx.watch("w")
    whole = make_image(stage.tmp / "source.jpg", 4000, 3000).read_bytes()
    path = watch.input / "a.jpg"
    path.write_bytes(whole[: len(whole) // 2])  # the copy paused halfway: a stable look, a truncated file
    checks.look_ahead(watch, [stat_candidate(watch.input, "a.jpg")], settling={"a.jpg"})
    wait_for(lambda: _ahead_done(checks), timeout=30, what="the check ahead")
    assert inspected["a.jpg"] == 1
    with path.open("ab") as rest:
        rest.write(whole[len(whole) // 2:])
    settled = stat_candidate(watch.input, "a.jpg")
    checks.submit(watch, settled)
    photo = wait_for(lambda: _recorded(checks, stage, "a.jpg"), timeout=30, what="the record")
    assert (photo.state, photo.md5) == ("ready", hashlib.md5(whole).hexdigest())
    assert inspected["a.jpg"] == 2


def test_a_refusal_found_ahead_is_never_used_even_for_an_unchanged_file(stage, inspected):
    checks = Inspections(stage.ctx, size=1)
    watch = stage.ctx.watch("w")
    whole = make_image(stage.tmp / "source.jpg", 640, 480).read_bytes()
    (watch.input / "a.jpg").write_bytes(whole[: len(whole) // 2])
    look = stat_candidate(watch.input, "a.jpg")
    checks.look_ahead(watch, [look], settling={"a.jpg"})
    wait_for(lambda: _ahead_done(checks), timeout=20, what="the check ahead")
    assert not checks.proven("w", look)
    checks.submit(watch, look)  # it settled cut short: the settled check, not the one ahead, rejects it
    photo = wait_for(lambda: _recorded(checks, stage, "a.jpg"), timeout=20, what="the record")
    assert photo.state == "rejected" and "truncated" in photo.reason
    assert inspected["a.jpg"] == 2


def test_what_was_checked_ahead_is_forgotten_once_the_file_is_no_longer_settling(stage):
    checks = Inspections(stage.ctx, size=1)
    watch = stage.ctx.watch("w")
    make_image(watch.input / "a.jpg", 320, 240)
    look = stat_candidate(watch.input, "a.jpg")
    checks.look_ahead(watch, [look], settling={"a.jpg"})
    wait_for(lambda: _ahead_done(checks), timeout=20, what="the check ahead")
    assert checks.proven("w", look)
    checks.look_ahead(watch, [], settling=set())  # it vanished (or was deleted) while settling
    assert not checks.proven("w", look)
    checks.close()
