"""The outcome table, row by row: each test drives a real stage (upload, create, queue, look,
deliver) against the emulator into one kind of fault and checks what the table promises.

`ROWS` names the test that proves each row; a test below checks that every row has one.
"""

from __future__ import annotations

import errno
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests
from hostile_http import HostileServer, fixed
from stage_helpers import Stage
from support import API_KEY, plain_studio, wait_for

from skylab_watch.pipeline import failures, jobs, uploader
from skylab_watch.pipeline.completion import Deliveries
from skylab_watch.pipeline.deliver import JobLook, deliver_guarded
from skylab_watch.pipeline.outcomes import TABLE, Outcome, classify
from skylab_watch.studio import StudioClient
from skylab_watch.studio.records import StudioJob, PhotoResult

ROWS = {
    "the file changed after it was hashed": "test_a_file_changed_after_hashing_is_superseded",
    "the account is out of credits": "test_out_of_credits_pauses_and_never_fails_the_photo",
    "Studio refused the API key; a person must fix it": "test_a_refused_key_backs_off_studio",
    "the API answered with a redirect (api_url moved?), not followed": "test_a_redirect_from_the_api_backs_off_studio",
    "Studio asks us to slow down (429)": "test_429_backs_off_at_least_as_long_as_asked",
    "trouble on Studio's side (5xx)": "test_5xx_backs_off_studio_and_keeps_the_photo",
    "Studio unreachable or no answer in time": "test_studio_unreachable_backs_off_and_keeps_the_photo",
    "a download longer than its cap": "test_a_result_longer_than_the_cap_fails_after_a_few_fetches",
    "a URL we never fetch (a private address, endless redirects)": "test_a_result_url_we_never_fetch_fails_at_once",
    "bytes damaged in transit (BadDigest)": "test_two_bad_digests_in_a_row_defer_and_the_next_try_delivers",
    "presigned URL expired; a fresh one is asked for": "test_upload_urls_that_keep_expiring_defer_the_photo",
    "the object store had trouble (5xx, 429)": "test_store_5xx_on_put_defers_the_photo",
    "the object store refused the URL (404, ...)": "test_a_result_the_store_refuses_fails_after_a_few_looks",
    "it no longer exists at Studio (deleted?)": "test_a_job_deleted_at_studio_fails_its_photos_naming_them",
    "Studio refused the request (422 or another 4xx)": "test_one_watchs_refused_job_fails_while_another_watch_flows",
    "a result URL of a scheme we never fetch": "test_a_result_url_of_another_scheme_fails_at_once",
    "a result that cannot be used": "test_a_result_that_does_not_decode_fails_after_a_few_fetches",
    "the watch's input folder is gone (share unmounted?)": "test_a_vanished_watch_folder_pauses_the_upload",
    "the original was moved or deleted": "test_a_deleted_original_fails_naming_watch_and_file",
    "a name the filesystem cannot hold": "test_a_name_the_filesystem_cannot_hold_fails_the_photo",
    "a symbolic link in the output folder where an output must go":
        "test_a_link_in_the_output_tree_fails_the_photo_and_nothing_is_written_through_it",
    "the output disk refuses writes": "test_an_output_disk_that_refuses_writes_pauses_with_a_notice",
    "a passing I/O fault (EIO, ESTALE, timeout)": "test_passing_io_faults_are_retried",
    "a file that is not there": "test_a_missing_file_fails",
    "a file we may not read": "test_a_file_we_may_not_read_fails",
    "another I/O fault": "test_other_io_faults_are_retried",
    "an unexpected error (a bug): logged with its traceback": "test_an_unexpected_error_is_retried_not_failed",
}


@pytest.fixture
def stage(tmp_path, plain_emulator):
    s = Stage(tmp_path, plain_emulator.url, names=("w", "v"))
    yield s
    s.close()


def _failed(stage: Stage, photo) -> bool:
    return stage.photo(photo).state == "failed"


def test_every_row_of_the_table_has_its_test():
    meanings = [rule.meaning for rule in TABLE]
    assert sorted(meanings) == sorted(ROWS), "a row was added or renamed without its test"
    missing = [name for name in ROWS.values() if name not in globals()]
    assert not missing


# ---------------------------------------------------------------- uploads

def test_a_file_changed_after_hashing_is_superseded(stage):
    photo = stage.add_photo()
    stage.created_job()
    (stage.tmp / "w" / "in" / "a.jpg").write_bytes(b"new content written over the photo")
    assert uploader.upload_photo(stage.ctx, photo) == "superseded"


def test_out_of_credits_pauses_and_never_fails_the_photo(stage, plain_emulator):
    photo = stage.add_photo()
    stage.created_job()
    plain_emulator.set_faults({"out_of_credits": True})
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert stage.ctx.credits.paused and "credits" in stage.ledger.notices()
    plain_emulator.set_faults({"out_of_credits": False})
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"
    assert "credits" not in stage.ledger.notices(), "the notice ends with its cause"


@contextmanager
def _studio_at(stage: Stage, url: str, key: str) -> Iterator[None]:
    """Swap the stage's Studio client for one at `url` with `key`, with the same retry policy; restore it after."""
    good = stage.ctx.studio
    stage.ctx.studio = StudioClient(url, key, retry=good.retry)
    try:
        yield
    finally:
        stage.ctx.studio.close()
        stage.ctx.studio = good


def test_a_refused_key_backs_off_studio(stage, plain_emulator):
    photo = stage.add_photo()
    stage.created_job()
    with _studio_at(stage, plain_emulator.url, "not-the-key"):
        assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert not stage.ctx.health.ready()
    assert stage.photo(photo).trouble_since is not None


def test_a_redirect_from_the_api_backs_off_studio(stage):
    photo = stage.add_photo()
    stage.created_job()
    with HostileServer(fixed(301, headers={"Location": "https://studio.example.com/api/public/v1/photos"})) as api, \
            _studio_at(stage, api.url, API_KEY):
        assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert not stage.ctx.health.ready()
    assert stage.photo(photo).state != "failed" and stage.photo(photo).trouble_since is not None


def test_429_backs_off_at_least_as_long_as_asked(stage, plain_emulator):
    photo = stage.add_photo()
    stage.created_job()
    plain_emulator.set_faults({"errors": {"POST photos": {"status": 429, "retry_after": 90}}})
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert not stage.ctx.health.ready() and not stage.ctx.deferrals.due(("photo", photo.id))
    assert stage.ctx.health._until - time.monotonic() > 60  # noqa: SLF001 - the wait asked for is honoured


def test_5xx_backs_off_studio_and_keeps_the_photo(stage, plain_emulator):
    photo = stage.add_photo()
    stage.created_job()
    plain_emulator.set_faults({"errors": {"GET photos/upload_url": {"status": 500}}})
    for _ in range(4):  # never "3 attempts" for a passing fault
        assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert not stage.ctx.health.ready()
    plain_emulator.clear_faults()
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"
    assert stage.photo(photo).trouble_since is None
    ids = [p["id"] for p in plain_emulator.state()["photos"]]
    assert ids == [stage.photo(photo).studio_id], "one record, however many tries"


def test_studio_unreachable_backs_off_and_keeps_the_photo(stage, plain_emulator):
    photo = stage.add_photo()
    stage.created_job()
    plain_emulator.stop()
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert not stage.ctx.health.ready()
    assert not _failed(stage, photo)


def test_two_bad_digests_in_a_row_defer_and_the_next_try_delivers(stage, plain_emulator):
    photo = stage.add_photo()
    stage.created_job()
    plain_emulator.set_faults({"put_corrupt_next": 2})
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert stage.ctx.health.ready(), "one photo's damaged transfer is no reason to stop all Studio work"
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"


def test_upload_urls_that_keep_expiring_defer_the_photo(tmp_path):
    with plain_studio(upload_url_seconds=0) as emu:
        stage = Stage(tmp_path, emu.url)
        try:
            photo = stage.add_photo()
            stage.created_job()
            assert uploader.upload_photo(stage.ctx, photo) == "uploading"
            assert not stage.ctx.deferrals.due(("photo", photo.id))
        finally:
            stage.close()


def test_store_5xx_on_put_defers_the_photo(stage, plain_emulator):
    photo = stage.add_photo()
    stage.created_job()
    plain_emulator.set_faults({"errors": {"PUT store": {"status": 503}}})
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert not _failed(stage, photo)
    plain_emulator.clear_faults()
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"


def test_a_vanished_watch_folder_pauses_the_upload(stage):
    photo = stage.add_photo()
    stage.created_job()
    root = stage.tmp / "w" / "in"
    root.rename(stage.tmp / "w" / "away")
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    assert not _failed(stage, photo)
    (stage.tmp / "w" / "away").rename(root)
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"


def test_a_deleted_original_fails_naming_watch_and_file(stage, plain_emulator):
    photo = stage.add_photo("gone.jpg")
    stage.created_job()
    (stage.tmp / "w" / "in" / "gone.jpg").unlink()
    assert uploader.upload_photo(stage.ctx, photo) == "failed"
    reason = stage.photo(photo).reason
    assert reason.startswith("w: gone.jpg: ") and "moved or deleted" in reason


# ---------------------------------------------------------------- jobs

def test_one_watchs_refused_job_fails_while_another_watch_flows(stage):
    bad = stage.add_photo("bad.jpg", watch="w", seed=1)
    good = stage.add_photo("good.jpg", watch="v", seed=2)
    refused = stage.closed_job("w")
    stage.ledger.update_job(refused.id, profile_id=999_999)  # the profile was deleted at Studio
    flowing = stage.closed_job("v")
    from skylab_watch.daemon import Daemon
    daemon = Daemon(stage.config, stage.ledger, stage.studio, stage.ctx.profiles)
    daemon.ctx = stage.ctx
    daemon._create_jobs()  # noqa: SLF001 - the stage as the loop runs it
    assert stage.ledger.get_job(flowing.id).state == "created"
    assert stage.ledger.get_job(refused.id).state == "failed"
    assert stage.photo(bad).state == "failed" and stage.photo(bad).reason.startswith("w: bad.jpg: ")
    assert stage.ctx.health.ready(), "one job's refusal never backs off Studio for everyone"
    # the created job's photo was handed to the uploaders at once, and goes on
    wait_for(lambda: (daemon._reap_uploads(), stage.photo(good).state == "uploaded")[1],  # noqa: SLF001
             timeout=20, what="the other watch's photo uploaded")
    daemon.shutdown(5)


def test_a_job_deleted_at_studio_fails_its_photos_naming_them(stage, plain_emulator):
    photo = stage.add_photo("lost.jpg")
    job = stage.created_job()
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"
    requests.delete(f"{plain_emulator.url}/api/public/v1/jobs/{job.studio_id}",
                    headers={"X-SLT-API-KEY": API_KEY}, timeout=5).raise_for_status()
    try:
        jobs.queue_uploaded_job(stage.ctx, stage.ledger.get_job(job.id))
    except Exception as exc:  # noqa: BLE001 - reported as the loop reports it
        assert failures.job_step_failed(stage.ctx, stage.ledger.get_job(job.id), exc, "queueing") \
            is Outcome.FAIL_ITEM
    assert stage.photo(photo).state == "failed"
    assert "w: lost.jpg: " in stage.photo(photo).reason and "no longer exists" in stage.photo(photo).reason


# ---------------------------------------------------------------- results

def _queued_photo(stage: Stage, plain_emulator):
    photo = stage.add_photo()
    job = stage.created_job()
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"
    jobs.queue_uploaded_job(stage.ctx, stage.ledger.get_job(job.id))
    return stage.photo(photo), stage.ledger.get_job(job.id)


def _look() -> JobLook:
    return JobLook(profile={"outputFileType": "jpg"}, background_stems=[])


class _OneAnswer(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_result_that_does_not_decode_fails_after_a_few_fetches(stage, plain_emulator):
    photo, _ = _queued_photo(stage, plain_emulator)
    handler = type("Garbage", (_OneAnswer,), {"body": b"\xff\xd8 this is not a JPEG" * 50})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/result.jpg"
    try:
        states = [deliver_guarded(stage.ctx, stage.photo(photo), url, _look()) for _ in range(3)]
    finally:
        server.shutdown()
    assert states[:2] == ["delivering", "delivering"] and states[2] == "failed"
    assert "does not decode" in stage.photo(photo).reason


def test_a_result_the_store_refuses_fails_after_a_few_looks(stage, plain_emulator):
    photo, _ = _queued_photo(stage, plain_emulator)
    wait_for(lambda: stage.studio.read_photo(photo.studio_id).result_url, what="the result")
    url = stage.studio.read_photo(photo.studio_id).result_url
    plain_emulator.set_faults({"errors": {"GET store": {"status": 404}}})
    states = [deliver_guarded(stage.ctx, stage.photo(photo), url, _look()) for _ in range(3)]
    assert states[-1] == "failed" and states[0] != "failed"
    assert stage.photo(photo).reason.startswith("w: a.jpg: delivery failed")


def test_a_result_longer_than_the_cap_fails_after_a_few_fetches(stage, plain_emulator):
    photo, _ = _queued_photo(stage, plain_emulator)
    url = wait_for(lambda: stage.studio.read_photo(photo.studio_id).result_url, what="the result")
    stage.ctx.studio.max_download_bytes = 1000  # the emulator's result is a few KB: "too long" for this test
    states = [deliver_guarded(stage.ctx, stage.photo(photo), url, _look()) for _ in range(3)]
    assert states[:2] == ["delivering", "delivering"] and states[2] == "failed"
    assert "more than the 1000 bytes allowed" in stage.photo(photo).reason


def test_a_result_url_we_never_fetch_fails_at_once(stage, plain_emulator):
    photo, _ = _queued_photo(stage, plain_emulator)
    with HostileServer(fixed(302, headers={"Location": "ftp://127.0.0.1/result.jpg"})) as store:
        assert deliver_guarded(stage.ctx, stage.photo(photo), store.url + "/result.jpg", _look()) == "failed"
    assert "only http(s) URLs are fetched" in stage.photo(photo).reason
    assert stage.photo(photo).reason.startswith("w: a.jpg: delivery failed")


def test_a_result_url_of_another_scheme_fails_at_once(stage, plain_emulator):
    photo, job = _queued_photo(stage, plain_emulator)
    deliveries = Deliveries(stage.ctx)
    try:
        state = stage.studio.read_job(job.studio_id)
        deliveries._decide(job, photo, PhotoResult(photo.studio_id, "a.jpg", None, "file:///etc/passwd"),  # noqa: SLF001
                           StudioJob(state.id, state.name, "completed", "regular", None, None))
    finally:
        deliveries.shutdown(1)
    assert stage.photo(photo).state == "failed" and "file:///etc/passwd" in stage.photo(photo).reason


def test_an_output_disk_that_refuses_writes_pauses_with_a_notice(stage, plain_emulator):
    photo, _ = _queued_photo(stage, plain_emulator)
    url = wait_for(lambda: stage.studio.read_photo(photo.studio_id).result_url, what="the result")
    (stage.tmp / "w" / "out").rmdir()
    (stage.tmp / "w" / "out").write_text("a file where the output folder should be")
    assert deliver_guarded(stage.ctx, stage.photo(photo), url, _look()) == "delivering"
    assert "output:w" in stage.ledger.notices()
    (stage.tmp / "w" / "out").unlink()
    assert deliver_guarded(stage.ctx, stage.photo(photo), url, _look()) == "done"
    assert "output:w" not in stage.ledger.notices(), "the notice ends with its cause"


def test_a_link_in_the_output_tree_fails_the_photo_and_nothing_is_written_through_it(stage, plain_emulator):
    photo = stage.add_photo("sub/a.jpg")
    job = stage.created_job()
    assert uploader.upload_photo(stage.ctx, photo) == "uploaded"
    jobs.queue_uploaded_job(stage.ctx, stage.ledger.get_job(job.id))
    url = wait_for(lambda: stage.studio.read_photo(stage.photo(photo).studio_id).result_url, what="the result")
    elsewhere = stage.tmp / "elsewhere"
    elsewhere.mkdir()
    (stage.tmp / "w" / "out" / "sub").symlink_to(elsewhere)
    assert deliver_guarded(stage.ctx, stage.photo(photo), url, _look()) == "failed"
    assert list(elsewhere.iterdir()) == []
    reason = stage.photo(photo).reason
    assert reason.startswith("w: sub/a.jpg: ") and str(stage.tmp / "w" / "out" / "sub") in reason
    assert "output:w" not in stage.ledger.notices(), "a link is the photo's failure, not a disk pause"


# ---------------------------------------------------------------- faults of the machine itself

def _fails_with(stage: Stage, exc: BaseException) -> str:
    """Fail a step of a photo in a job (batched) with `exc`; return the photo's state after."""
    photo = stage.add_photo(f"p{id(exc)}.jpg")
    stage.ledger.update_photo(photo.id, state="batched")
    failures.photo_step_failed(stage.ctx, photo, exc, "delivery")
    return stage.photo(photo).state


def test_a_name_the_filesystem_cannot_hold_fails_the_photo(stage):
    with pytest.raises(OSError) as caught:
        open(stage.tmp / ("x" * 300 + ".jpg"), "wb")  # a real ENAMETOOLONG from the filesystem
    assert caught.value.errno == errno.ENAMETOOLONG
    assert _fails_with(stage, caught.value) == "failed"


def test_passing_io_faults_are_retried(stage):
    for code in (errno.EIO, errno.ESTALE):
        assert classify(OSError(code, "x")).outcome is Outcome.RETRY_LATER
        assert _fails_with(stage, OSError(code, "passing")) == "batched"


def test_a_missing_file_fails(stage):
    with pytest.raises(FileNotFoundError) as caught:
        open(stage.tmp / "nothing-here.jpg", "rb")
    assert _fails_with(stage, caught.value) == "failed"


def test_a_file_we_may_not_read_fails(stage):
    assert classify(PermissionError(errno.EACCES, "denied")).outcome is Outcome.FAIL_ITEM
    assert _fails_with(stage, PermissionError(errno.EACCES, "denied", "x.jpg")) == "failed"


def test_other_io_faults_are_retried(stage):
    assert _fails_with(stage, OSError(errno.ENXIO, "odd")) == "batched"


def test_an_unexpected_error_is_retried_not_failed(stage):
    assert _fails_with(stage, KeyError("a bug")) == "batched"


def test_passing_faults_fail_the_photo_only_after_the_give_up_budget(stage, plain_emulator):
    photo = stage.add_photo("late.jpg")
    stage.created_job()
    stage.ctx.give_up_seconds = 0.3
    plain_emulator.set_faults({"errors": {"GET photos/upload_url": {"status": 500}}})
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    wait_for(lambda: uploader.upload_photo(stage.ctx, photo) == "failed", timeout=10, interval=0.1,
             what="the budget to run out")
    reason = stage.photo(photo).reason
    assert reason.startswith("w: late.jpg: upload failed") and "still failing after" in reason


def test_a_retry_after_of_a_day_is_honoured_only_up_to_the_cap(stage, plain_emulator):
    from skylab_watch.pipeline.outcomes import MAX_RETRY_AFTER_SECONDS
    photo = stage.add_photo()
    stage.created_job()
    plain_emulator.set_faults({"errors": {"POST photos": {"status": 429, "retry_after": 86400}}})
    assert uploader.upload_photo(stage.ctx, photo) == "uploading"
    waits = (stage.ctx.health._until - time.monotonic(),  # noqa: SLF001 - the wait chosen
             stage.ctx.deferrals._until[("photo", photo.id)] - time.monotonic())  # noqa: SLF001
    assert all(MAX_RETRY_AFTER_SECONDS - 60 < w <= MAX_RETRY_AFTER_SECONDS for w in waits), waits
