"""Logging: JSON lines carry the journal fields; secrets, presigned queries and control characters
never reach the output as they are, in text, JSON or journald records."""

import io
import json
import logging
import os
import sys

import pytest

from skylab_watch.logs import SecretFilter, fields, setup_logging


def test_json_lines_carry_watch_job_and_photo():
    stream = io.StringIO()
    setup_logging("info", "json", stream=stream)
    logging.getLogger("skylab_watch").info("uploaded %s", "a.jpg", extra=fields("packshots", "job-1", "a.jpg"))
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert entry["message"] == "uploaded a.jpg"
    assert (entry["watch"], entry["job"], entry["photo"]) == ("packshots", "job-1", "a.jpg")
    assert entry["level"] == "info"


def test_a_secret_that_slips_into_a_message_is_redacted():
    stream = io.StringIO()
    setup_logging("debug", "text", secrets=["sekrit-api-key-123"], stream=stream)
    logging.getLogger("skylab_watch.x").warning("oops the key is %s", "sekrit-api-key-123")
    assert "sekrit-api-key-123" not in stream.getvalue()
    assert "[redacted]" in stream.getvalue()


# --- issue 11: secrets, presigned links and control characters ------------------

KEY = "sekrit-api-key-123"
PRESIGNED = ("http://127.0.0.1:9/store/photos/7/original?X-Amz-Credential=AKIAEXAMPLE%2F20261125"
             "&X-Amz-Expires-At=1764064800&X-Amz-Security-Token=tok3n-value&X-Amz-Signature=5f1e2d3c4b5a")
QUERY_VALUES = ("AKIAEXAMPLE", "1764064800", "tok3n-value", "5f1e2d3c4b5a")
HOSTILE_NAME = "a\n\x1b[31mb.jpg"
HOSTILE_SHOWN = "a\\n\\x1b[31mb.jpg"


def _logged(fmt: str, emit, secrets=(KEY,), level: str = "debug") -> str:
    """Set up logging in `fmt` with `secrets`, call `emit(logger)`, return what reached the stream."""
    stream = io.StringIO()
    setup_logging(level, fmt, secrets=secrets, stream=stream)
    emit(logging.getLogger("skylab_watch.test"))
    return stream.getvalue()


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_every_presigned_query_value_is_redacted_at_every_level(level):
    out = _logged("text", lambda log: log.log(getattr(logging, level.upper()), "fetching %s", PRESIGNED))
    assert "/store/photos/7/original?X-Amz-Credential=[redacted]&X-Amz-Expires-At=[redacted]" in out
    assert "X-Amz-Signature=[redacted]" in out
    assert not [value for value in QUERY_VALUES if value in out]


def test_a_query_quoted_without_its_host_is_redacted_too():
    # requests' own words for a failed connection quote the path and query only.
    message = "Max retries exceeded with url: /store/x.jpg?sig=abc123def&token=zz9 (Caused by NewConnectionError)"
    out = _logged("json", lambda log: log.warning("upload failed: %s", message))
    entry = json.loads(out)
    assert entry["message"] == ("upload failed: Max retries exceeded with url: /store/x.jpg?sig=[redacted]"
                                "&token=[redacted] (Caused by NewConnectionError)")


def test_urllib3_warnings_go_through_the_same_redaction():
    out = _logged("text", lambda _: logging.getLogger("urllib3.connectionpool").warning(
        "Failed to parse headers (url=%s): bad", PRESIGNED))
    assert "Failed to parse headers" in out and "X-Amz-Signature=[redacted]" in out
    assert "5f1e2d3c4b5a" not in out


def _raise_with_secrets() -> None:
    raise RuntimeError(f"Studio said: bad key {KEY} for {PRESIGNED}")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_traceback_text_is_masked(fmt):
    def emit(log):
        try:
            _raise_with_secrets()
        except RuntimeError:
            log.exception("upload of %s failed", "a.jpg")
    out = _logged(fmt, emit)
    text = json.loads(out)["exception"] if fmt == "json" else out
    assert "Traceback (most recent call last)" in text and "_raise_with_secrets" in text
    assert f"RuntimeError: Studio said: bad key [redacted] for {PRESIGNED.split('?')[0]}?" in text
    assert KEY not in out and "5f1e2d3c4b5a" not in out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_stack_info_is_masked(fmt):
    def emit(log):
        log.warning("look where we are", stack_info=True)  # sekrit-api-key-123 in this source line
    out = _logged(fmt, emit)
    text = json.loads(out)["stack"] if fmt == "json" else out
    assert "Stack (most recent call last)" in text and "look where we are" in text
    assert "# [redacted] in this source line" in text and KEY not in out


def test_a_secret_of_any_length_is_masked_where_it_stands_alone():
    out = _logged("text", lambda log: log.info("key=%s sent as 'k9' and %s; table k9x stays", "k9", "k9"),
                  secrets=["k9"])
    assert "key=[redacted] sent as '[redacted]' and [redacted]; table k9x stays" in out


def test_a_long_secret_is_masked_even_inside_a_word():
    out = _logged("text", lambda log: log.info("header X-SLT-API-KEY:%sEND", KEY))
    assert "X-SLT-API-KEY:[redacted]END" in out


def test_control_characters_in_a_text_line_are_escaped_to_one_visible_line():
    out = _logged("text", lambda log: log.info("uploaded %s", HOSTILE_NAME, extra=fields("w", None, HOSTILE_NAME)))
    assert out.count("\n") == 1 and "\x1b" not in out
    assert out.rstrip("\n").endswith(f"uploaded {HOSTILE_SHOWN}")


def test_control_characters_in_a_json_line_are_escaped_as_in_text():
    undecodable = os.fsdecode(b"c\xff\x7f\xc2\x85.jpg")  # a non-UTF-8 byte, DEL, and C1 NEL
    out = _logged("json", lambda log: log.info("uploaded %s and %s", HOSTILE_NAME, undecodable,
                                               extra=fields("w", "job-1", HOSTILE_NAME)))
    assert out.count("\n") == 1
    entry = json.loads(out)
    assert entry["message"] == f"uploaded {HOSTILE_SHOWN} and c\\xff\\x7f\\x85.jpg"
    assert entry["photo"] == HOSTILE_SHOWN


def test_the_filter_leaves_journald_nothing_unmasked_to_read():
    """JournalHandler sends every record attribute (and str(exc_info)) as a field: none may hold a secret."""
    try:
        _raise_with_secrets()
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("skylab_watch.x", logging.ERROR, __file__, 1, "failed %s with %s", (HOSTILE_NAME, KEY),
                               exc_info)
    record.PHOTO = HOSTILE_NAME
    assert SecretFilter([KEY]).filter(record)
    assert record.exc_info is None and record.args is None
    assert KEY not in repr(vars(record)) and "5f1e2d3c4b5a" not in repr(vars(record))
    assert not [name for name, value in vars(record).items() if isinstance(value, str) and "\x1b" in value]
    assert record.getMessage() == f"failed {HOSTILE_SHOWN} with [redacted]"


def test_a_call_whose_arguments_do_not_fit_is_logged_not_raised():
    out = _logged("text", lambda log: log.info("two %s %s", KEY))
    assert "arguments that do not fit the format" in out and KEY not in out
