"""The in-memory metrics (telemetry.Telemetry): what they record, that each daemon's are its own, that
recording never raises, and that the Studio client feeds them from real exchanges with the emulator."""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support import API_KEY, make_image

from skylab_watch.pipeline.outcomes import TABLE
from skylab_watch.studio import RetryPolicy, ServerError, StudioClient, errors, upload_photo_file
from skylab_watch.telemetry import BYTE_BUCKETS, SECOND_BUCKETS, Telemetry, kind_name, label_value

MiB = 1 << 20


def samples(telemetry: Telemetry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Render `telemetry` in the text format and parse it back: {(sample name, sorted labels): value}."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(telemetry)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_transfers_errors_retries_and_the_last_success_are_recorded_and_render_in_the_text_format() -> None:
    telemetry = Telemetry(clock=lambda: 1_700_000_000.0)
    telemetry.record_upload(3 * MiB, 0.4)
    telemetry.record_upload(300 << 10, 0.08)
    telemetry.record_download("result", 5 * MiB, 1.5)
    telemetry.record_studio_error(errors.RateLimitedError("slow down"), "api")
    telemetry.record_studio_error(errors.RateLimitedError("slow down"), "api")
    telemetry.record_studio_error(errors.BadDigestError("damaged", 400), "store")
    telemetry.record_retry("photo", "looking for the result", "back off Studio", errors.ServerError)
    telemetry.record_api_success()
    got = samples(telemetry)
    assert got[("skylab_watch_upload_bytes_count", ())] == 2
    assert got[("skylab_watch_upload_bytes_sum", ())] == 3 * MiB + (300 << 10)
    assert got[("skylab_watch_upload_bytes_bucket", (("le", "524288.0"),))] == 1  # the 300 KiB one
    assert got[("skylab_watch_upload_duration_seconds_bucket", (("le", "0.1"),))] == 1
    assert got[("skylab_watch_download_bytes_count", (("kind", "result"),))] == 1
    assert got[("skylab_watch_download_bytes_count", (("kind", "background"),))] == 0  # there from the start
    assert got[("skylab_watch_studio_errors_total", (("kind", "rate_limited"), ("target", "api")))] == 2
    assert got[("skylab_watch_studio_errors_total", (("kind", "bad_digest"), ("target", "store")))] == 1
    retry = (("item", "photo"), ("kind", "server"), ("outcome", "back_off_studio"),
             ("stage", "looking_for_the_result"))
    assert got[("skylab_watch_retries_total", retry)] == 1
    assert got[("skylab_watch_studio_last_success_timestamp_seconds", ())] == 1_700_000_000.0


def test_each_telemetry_counts_only_its_own_events_and_nothing_reaches_the_process_global_registry() -> None:
    first, second = Telemetry(), Telemetry()
    first.record_upload(1000, 0.1)
    assert samples(first)[("skylab_watch_upload_bytes_count", ())] == 1
    assert samples(second)[("skylab_watch_upload_bytes_count", ())] == 0
    assert prometheus_client.REGISTRY.get_sample_value("skylab_watch_upload_bytes_count") is None


def test_recording_never_raises_into_the_pipeline_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    telemetry = Telemetry(clock=lambda: 1 / 0)
    with caplog.at_level(logging.WARNING, logger="skylab_watch"):
        telemetry.record_api_success()                       # the clock raises
        telemetry.record_upload("not a size", 0.1)           # type: ignore[arg-type]
        telemetry.record_download("result", 10, "slow")      # type: ignore[arg-type]
    assert [r.getMessage() for r in caplog.records] == ["recording a metric failed; metrics may be incomplete"]
    telemetry.record_upload(10, 0.1)                         # and it still counts what it can
    assert samples(telemetry)[("skylab_watch_upload_bytes_count", ())] == 1


def test_error_kinds_are_the_class_names_of_studio_errors_and_the_outcome_table_one_label_each() -> None:
    classes = {c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.StudioError)}
    classes |= {rule.kind for rule in TABLE}
    names = {kind_name(c) for c in classes}
    assert len(names) == len(classes), "two classes would share a label"
    assert {kind_name(errors.ServerError), kind_name(errors.RateLimitedError), kind_name(errors.TransportError),
            kind_name(errors.AuthError), kind_name(errors.AnswerTooLarge), kind_name(OSError)} == \
        {"server", "rate_limited", "transport", "auth", "answer_too_large", "os"}
    assert label_value("archive of the original") == "archive_of_the_original"


def test_buckets_span_photo_sized_transfers() -> None:
    assert BYTE_BUCKETS[0] == 256 << 10 and BYTE_BUCKETS[-1] == 256 * MiB
    assert SECOND_BUCKETS[0] == 0.05 and SECOND_BUCKETS[-1] == 300


def test_recording_costs_microseconds_not_milliseconds() -> None:
    telemetry, rounds = Telemetry(), 20_000
    started = time.perf_counter()
    for _ in range(rounds):
        telemetry.record_upload(3 * MiB, 0.5)
        telemetry.record_api_success()
    per_event = (time.perf_counter() - started) / (2 * rounds)
    assert per_event < 50e-6, f"{per_event * 1e6:.1f} us per event"  # measured 2-6 us; an upload takes ms


@pytest.fixture
def client(emulator):
    policy = RetryPolicy(max_attempts=4, initial_seconds=0.01, max_backoff_seconds=0.05)
    with StudioClient(emulator.url, API_KEY, timeout=(2, 10), retry=policy, telemetry=Telemetry()) as c:
        yield c


def test_the_client_counts_each_failed_attempt_by_kind_and_each_transfer_that_went_through(
        client: StudioClient, emulator, tmp_path) -> None:
    photo_file = make_image(tmp_path / "a.jpg")
    profile = client.create_profile("plain", output_file_type="jpg")
    before = time.time()
    emulator.set_faults({"errors": {"POST jobs": {"status": 503, "count": 2}}, "put_fail_next": 1})
    job = client.create_job("job-1", profile["id"])         # two 503s, then created
    photo = upload_photo_file(client, photo_file, job["id"])   # one PUT answered 500, then stored
    emulator.set_faults({"errors": {"GET jobs/{id}": {"status": 502}}})
    with pytest.raises(ServerError):
        client.get_job(job["id"])                            # four 502s: the policy gives up
    stored = client.get_photo(int(photo["id"]))["originalUrl"]
    sink = io.BytesIO()
    size = client.download(stored, sink)
    got = samples(client.telemetry)
    assert got[("skylab_watch_studio_errors_total", (("kind", "server"), ("target", "api")))] == 2 + 4
    assert got[("skylab_watch_studio_errors_total", (("kind", "store"), ("target", "store")))] == 1
    assert got[("skylab_watch_upload_bytes_count", ())] == 1
    assert got[("skylab_watch_upload_bytes_sum", ())] == photo_file.stat().st_size == size
    assert got[("skylab_watch_download_bytes_sum", (("kind", "result"),))] == size
    assert before <= got[("skylab_watch_studio_last_success_timestamp_seconds", ())] <= time.time()


def test_every_metric_of_the_telemetry_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    names = {family.name for family in Telemetry().collect()}
    assert len(names) == 7
    for name in names:
        shown = f"`{name}_total`" if f"{name}_total" in readme else f"`{name}`"
        assert shown in readme, name
