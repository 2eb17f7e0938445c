"""/metrics of a real daemon against the emulator: transfers, Studio errors, retries and the last good call,
parsed back with prometheus_client's parser and compared with what really went over the wire."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from daemon_helpers import DaemonThread, compress_time, studio_photos, write_config
from prometheus_client.parser import text_string_to_metric_families
from support import free_port, make_image, wait_for

from skylab_watch.ledger import JobState, PhotoState

TOKEN = "t0ken-0123456789abcdef"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _config(tmp: Path, emu) -> Path:
    token = tmp / "http_token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    return write_config(tmp, emu.url, [{"name": "w", "input": tmp / "in", "output": tmp / "out",
                                        "profile": "plain"}],
                        http={"listen": f"127.0.0.1:{free_port()}", "token_file": str(token)})


def scrape(d: DaemonThread) -> Samples:
    """GET the daemon's /metrics and parse it back: {(sample name, sorted labels): value}."""
    assert d.daemon.http is not None
    answer = requests.get(f"http://127.0.0.1:{d.daemon.http.address[1]}/metrics", timeout=5)
    assert answer.status_code == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def matching(samples: Samples, name: str, **labels: str) -> float:
    """Sum the samples called `name` whose labels include `labels` (0 when there are none)."""
    return sum(v for (n, got), v in samples.items() if n == name and set(labels.items()) <= set(got))


def test_transfers_in_metrics_match_the_photos_uploaded_and_the_results_downloaded(
        tmp_path: Path, plain_emulator) -> None:
    cfg = _config(tmp_path, plain_emulator)
    started = time.time()
    with DaemonThread(cfg) as d:
        originals = [make_image(tmp_path / "in" / f"p{i}.jpg", width=160 + 40 * i, seed=i) for i in range(3)]
        wait_for(lambda: len(list((tmp_path / "out").glob("*.jpg"))) == 3, what="three deliveries")
        wait_for(lambda: d.ledger.count_jobs_by_state() == {JobState.DELIVERED: 1}, what="the job delivered")
        got = scrape(d)
        done = time.time()
    results = [requests.get(p["retouchedUrl"], timeout=5).content for p in studio_photos(plain_emulator)]
    assert len(results) == 3
    assert matching(got, "skylab_watch_upload_bytes_count") == 3
    assert matching(got, "skylab_watch_upload_bytes_sum") == sum(p.stat().st_size for p in originals)
    assert matching(got, "skylab_watch_upload_duration_seconds_count") == 3
    assert matching(got, "skylab_watch_download_bytes_count", kind="result") == 3
    assert matching(got, "skylab_watch_download_bytes_sum", kind="result") == sum(len(r) for r in results)
    assert matching(got, "skylab_watch_download_bytes_count", kind="background") == 0
    assert 0 < matching(got, "skylab_watch_download_duration_seconds_sum", kind="result") < done - started
    assert started <= matching(got, "skylab_watch_studio_last_success_timestamp_seconds") <= done
    assert matching(got, "skylab_watch_studio_errors_total") == 0
    assert matching(got, "skylab_watch_retries_total") == 0


def test_studio_faults_raise_the_error_counter_of_their_kind_and_the_retries_of_their_stage(
        tmp_path: Path, plain_emulator) -> None:
    cfg = _config(tmp_path, plain_emulator)
    with DaemonThread(cfg) as d:
        compress_time(d)
        d.daemon.ctx.health.first_wait = 0.1
        plain_emulator.set_faults({"errors": {"POST photos": {"status": 503}}})
        make_image(tmp_path / "in" / "a.jpg")
        upload_retries = {"item": "photo", "stage": "upload", "outcome": "back_off_studio", "kind": "server"}
        wait_for(lambda: matching(scrape(d), "skylab_watch_retries_total", **upload_retries) >= 1,
                 what="an upload deferred after 503s")
        plain_emulator.set_faults({"errors": {"POST photos": None}, "put_fail_next": 1})
        wait_for(lambda: d.ledger.jobs_in_state(JobState.QUEUED), what="the job queued")
        plain_emulator.set_faults({"errors": {"GET jobs/{id}": {"status": 429, "retry_after": 0}}})
        poll_retries = {"item": "job", "stage": "looking_at", "outcome": "back_off_studio", "kind": "rate_limited"}
        wait_for(lambda: matching(scrape(d), "skylab_watch_retries_total", **poll_retries) >= 1,
                 what="a look at the job deferred after 429s")
        plain_emulator.clear_faults()
        wait_for(lambda: d.ledger.state_counts().get("w", {}).get(PhotoState.DONE) == 1, what="delivered anyway")
        got = scrape(d)
    attempts = d.config.studio.retry.max_attempts
    assert matching(got, "skylab_watch_studio_errors_total", kind="server", target="api") >= attempts
    assert matching(got, "skylab_watch_studio_errors_total", kind="rate_limited", target="api") >= attempts
    assert matching(got, "skylab_watch_studio_errors_total", kind="store", target="store") == 1
    assert matching(got, "skylab_watch_upload_bytes_count") == 1  # the failed PUT is an error, not an upload
    assert matching(got, "skylab_watch_download_bytes_count", kind="result") == 1
