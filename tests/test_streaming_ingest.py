"""Streaming ingest: a job is created at its first photo and uploads start before the batch closes;
a clean run costs no look-up by name and no photo listing; the bytes sent are the ones validated."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import sys

from support import make_image, wait_for
from daemon_helpers import DaemonThread, studio_photos, write_config

from skylab_watch.pipeline import uploader
from skylab_watch.studio.upload import FileBody

sys.path.insert(0, str(Path(__file__).parent / "pipeline"))
from stage_helpers import Stage  # noqa: E402


def _config(tmp_path: Path, url: str, **batch: float) -> tuple[Path, Path]:
    inp = tmp_path / "in"
    cfg = write_config(tmp_path, url, [{"name": "w", "input": inp, "output": tmp_path / "out", "profile": "plain",
                                        "settle_seconds": 0.2,
                                        "batch": {"max_photos": 50, "quiet_seconds": 60, "max_wait_seconds": 60,
                                                  **batch}}])
    return cfg, inp


def test_a_job_is_created_and_its_photos_uploaded_while_the_batch_is_still_open(tmp_path, plain_emulator):
    cfg, inp = _config(tmp_path, plain_emulator.url)
    with DaemonThread(cfg) as d:
        for i in range(3):
            make_image(inp / f"IMG_{i}.jpg", seed=i)
        wait_for(lambda: len(d.ledger.photos_in_state("uploaded")) == 3, timeout=20, what="3 photos uploaded")
        (job,) = d.ledger.jobs_in_state("created")
        assert job.closed_at is None, "the batch is still open (quiet and max wait are 60 s)"
        assert plain_emulator.calls().get("PUT store") == 3, "the store saw the uploads before the batch closed"
        assert not plain_emulator.calls().get("POST jobs/{id}/queue"), "an open job is not queued"
        make_image(inp / "late.jpg", seed=9)  # joins the created job, and is uploaded into it
        wait_for(lambda: len(d.ledger.photos_in_state("uploaded", job_id=job.id)) == 4, timeout=20,
                 what="the late photo uploaded into the same job")
        assert plain_emulator.calls().get("POST jobs") == 1


def test_a_clean_run_makes_no_lookup_by_name_and_no_photo_listing(tmp_path, plain_emulator):
    cfg, inp = _config(tmp_path, plain_emulator.url, quiet_seconds=0.5)
    for i in range(4):
        make_image(inp / f"IMG_{i}.jpg", seed=20 + i)
    with DaemonThread(cfg) as d:
        wait_for(lambda: len(d.ledger.photos_in_state("done", "delivered")) == 4, timeout=30, what="4 delivered")
    calls = plain_emulator.calls()
    assert calls.get("POST jobs") == 1 and calls.get("PUT store") == 4 and calls.get("POST jobs/{id}/queue") == 1
    assert calls.get("GET jobs/find_by_name", 0) == 0, calls
    assert calls.get("GET photos/list_for_job", 0) == 0, calls


def test_a_file_rewritten_in_place_after_validation_is_never_stored(tmp_path, plain_emulator):
    """Same size and mtime put back by hand: only the running hash can tell; the store refuses the bytes
    (Content-MD5 is the recorded md5) and the photo is superseded, its record deleted."""
    stage = Stage(tmp_path, plain_emulator.url)
    try:
        photo = stage.add_photo()
        stage.created_job()
        path = tmp_path / "w" / "in" / "a.jpg"
        stat = path.stat()
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        with open(path, "r+b") as fh:
            fh.write(bytes(data))
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert uploader.upload_photo(stage.ctx, stage.photo(photo)) == "superseded"
    finally:
        stage.close()
    assert plain_emulator.calls().get("PUT store") == 1, "sent once, refused, not sent again"
    assert studio_photos(plain_emulator) == [], "the record of bytes the store refused is deleted"


def test_a_file_body_streams_in_chunks_pads_a_shortened_file_and_rehashes_only_when_asked(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    fd = os.open(path, os.O_RDONLY)
    try:
        body = FileBody(fd, 3000, md5, chunk=512)
        chunks = list(body)
        assert len(body) == 3000 and max(map(len, chunks)) == 512 and b"".join(chunks) == path.read_bytes()
        assert not body.short and body.still_matches()
        with open(path, "r+b") as fh:
            fh.write(b"xyz")  # same size, other bytes: the answer of the last look stands until the next send
        assert body.still_matches()
        assert b"".join(body).startswith(b"xyz") and not body.still_matches()
        os.truncate(path, 1000)  # shorter now: padded to the promised length, and flagged
        assert len(b"".join(body)) == 3000 and body.short and not body.still_matches()
    finally:
        os.close(fd)


def test_photos_are_claimed_together_counting_a_try_and_a_superseded_one_is_left_alone(tmp_path, plain_emulator):
    stage = Stage(tmp_path, plain_emulator.url)
    try:
        photos = [stage.add_photo(f"{n}.jpg", seed=n) for n in range(3)]
        stage.created_job()
        batched = [stage.photo(p) for p in photos]
        stage.ledger.update_photo(batched[1].id, state="superseded")  # a newer version arrived meanwhile
        claimed = uploader.claim_uploads(stage.ctx, batched)
        assert [p.id for p in claimed] == [batched[0].id, batched[2].id]
        assert [p.attempts for p in claimed] == [0, 0], "handed back as read: no earlier try, so no lookup first"
        assert [(stage.photo(p).state, stage.photo(p).attempts) for p in claimed] == [("uploading", 1)] * 2
        assert stage.photo(batched[1]).state == "superseded"
        sent = uploader.send_claimed(stage.ctx, claimed[0], stage.ledger.get_job(claimed[0].job_id))
        assert isinstance(sent, uploader.Sent) and stage.photo(claimed[0]).state == "uploading", \
            "a worker hands the success back; the loop records it"
        uploader.record_sent(stage.ctx, [sent])
        assert (stage.photo(claimed[0]).state, stage.photo(claimed[0]).studio_id) == ("uploaded", sent.studio_id)
        assert plain_emulator.calls().get("GET photos/list_for_job", 0) == 0
        assert plain_emulator.calls().get("PUT store") == 1
    finally:
        stage.close()


def test_upload_workers_get_photos_waiting_and_call_the_loop_back_before_they_run_dry(tmp_path, plain_emulator):
    from skylab_watch.pipeline.uploads import CLAIMED_PER_WORKER, Uploads
    import threading
    stage = Stage(tmp_path, plain_emulator.url)
    try:
        photos = [stage.add_photo(f"{n}.jpg", seed=n) for n in range(2 * CLAIMED_PER_WORKER + 1)]  # one job
        stage.created_job()
        called_back = threading.Event()
        uploads = Uploads(stage.ctx, 2, on_low=called_back.set)
        uploads.submit()
        assert len(uploads) == 2 * CLAIMED_PER_WORKER, "one pass hands each worker several photos"
        assert called_back.wait(30), "the loop is called back once fewer photos wait than there are workers"
        sent = 0

        def all_sent() -> bool:
            nonlocal sent
            sent += uploads.reap(str)
            uploads.submit()
            return sent == len(photos)
        wait_for(all_sent, timeout=60, what="every photo sent")
        assert {stage.photo(p).state for p in photos} == {"uploaded"}
    finally:
        stage.close()


def _four_claimed_one_sending(stage: Stage, emulator, may_work_on=lambda watch: True):
    """Four photos of a created job claimed by one upload worker, the first being sent (its record takes
    1 s to create), three waiting; return the photos and the Uploads."""
    from skylab_watch.pipeline.uploads import Uploads
    photos = [stage.add_photo(f"{n}.jpg", seed=n) for n in range(4)]
    stage.created_job()
    emulator.set_faults({"latency": {"POST photos": 1.0}})
    uploads = Uploads(stage.ctx, 1, may_work_on)
    uploads.submit()
    assert len(uploads) == 4
    wait_for(lambda: emulator.calls().get("POST photos", 0) >= 1, timeout=10, what="the first upload")
    return photos, uploads


def test_photos_claimed_but_never_started_get_their_try_back_at_a_stop(tmp_path, plain_emulator):
    stage = Stage(tmp_path, plain_emulator.url)
    try:
        photos, uploads = _four_claimed_one_sending(stage, plain_emulator)
        uploads.close()
        tries = sorted(stage.photo(p).attempts for p in photos)
        assert tries == [0, 0, 0, 1], "only the photo whose upload started keeps its counted try"
        assert {stage.photo(p).state for p in photos} == {"uploading"}
        uploads.shutdown(10)
    finally:
        stage.close()


def test_a_pause_holds_for_photos_already_claimed_and_their_try_is_given_back(tmp_path, plain_emulator):
    stage = Stage(tmp_path, plain_emulator.url)
    paused: set[str] = set()
    try:
        photos, uploads = _four_claimed_one_sending(stage, plain_emulator, lambda watch: watch not in paused)
        paused.add("w")  # paused by hand while three photos wait for the worker
        wait_for(lambda: (uploads.reap(str), len(uploads) == 0)[1], timeout=30, what="the queue worked through")
        states = sorted((stage.photo(p).state, stage.photo(p).attempts) for p in photos)
        assert states == [("uploaded", 1)] + [("uploading", 0)] * 3, "the three waiting were not sent"
        assert plain_emulator.calls().get("POST photos") == 1 and plain_emulator.calls().get("PUT store") == 1
        uploads.submit()
        assert len(uploads) == 0, "nothing of a paused watch is claimed again"
    finally:
        stage.close()
