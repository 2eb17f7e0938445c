"""The one table of state moves, enforced by the ledger, and the one mapping to what a person sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from skylab_watch.ledger import IllegalTransition, JobState, Ledger, PhotoState
from skylab_watch.ledger.states import (
    JOB_MOVES, PHOTO_MOVES, PHOTO_START, REPORT_CATEGORIES, REPORT_CATEGORY,
)


@pytest.fixture
def ledger(tmp_path: Path):
    opened = Ledger(tmp_path / "ledger.sqlite3")
    yield opened
    opened.close()


def _reachable(start: set, moves: dict) -> set:
    seen, todo = set(start), list(start)
    while todo:
        for nxt in moves[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_photo_state_is_reachable_and_a_new_photo_can_end_done():
    assert _reachable(set(PHOTO_START), PHOTO_MOVES) == set(PhotoState)
    assert PhotoState.DONE in _reachable({PhotoState.READY}, PHOTO_MOVES)


def test_every_job_state_written_today_is_reachable_from_open():
    legacy = {JobState.COMPLETED, JobState.CANCELLED}  # read from old ledgers, never written
    assert _reachable({JobState.OPEN}, JOB_MOVES) == set(JobState) - legacy


def test_an_illegal_photo_move_is_refused_and_nothing_is_written(ledger: Ledger):
    photo = ledger.add_photo("w", "a.jpg", 1, 1, "m", PhotoState.READY)
    with pytest.raises(IllegalTransition, match="from ready to queued"):
        ledger.update_photo(photo.id, state=PhotoState.QUEUED, reason="a bug")
    after = ledger.get_photo(photo.id)
    assert (after.state, after.reason) == ("ready", None)


def test_staying_in_a_state_is_always_allowed_so_a_step_can_be_redone(ledger: Ledger):
    photo = ledger.add_photo("w", "a.jpg", 1, 1, "m", PhotoState.READY)
    ledger.update_photo(photo.id, state=PhotoState.BATCHED)
    ledger.update_photo(photo.id, state=PhotoState.UPLOADING)
    assert ledger.claim_photo(photo.id, (PhotoState.BATCHED, PhotoState.UPLOADING), PhotoState.UPLOADING)


def test_a_claim_that_names_an_illegal_move_is_refused(ledger: Ledger):
    photo = ledger.add_photo("w", "a.jpg", 1, 1, "m", PhotoState.READY)
    with pytest.raises(IllegalTransition):
        ledger.claim_photo(photo.id, (PhotoState.READY,), PhotoState.DONE)
    assert ledger.get_photo(photo.id).state == PhotoState.READY


def test_an_illegal_job_move_is_refused(ledger: Ledger):
    job = ledger.reserve_job("w", "w-job", 1)
    with pytest.raises(IllegalTransition, match="from open to queued"):
        ledger.update_job(job.id, state=JobState.QUEUED)
    ledger.update_job(job.id, studio_status="anything")  # changes that are not moves are not checked
    assert ledger.get_job(job.id).state == JobState.OPEN


def test_a_done_photo_never_moves_again(ledger: Ledger):
    photo = ledger.add_photo("w", "a.jpg", 1, 1, "m", PhotoState.DONE)
    for state in PhotoState:
        if state is not PhotoState.DONE:
            with pytest.raises(IllegalTransition):
                ledger.update_photo(photo.id, state=state)


def test_every_photo_state_has_one_report_category():
    assert set(REPORT_CATEGORY) == set(PhotoState)
    assert {c for c in REPORT_CATEGORY.values() if c} == set(REPORT_CATEGORIES)
