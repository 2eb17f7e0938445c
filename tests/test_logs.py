"""Logging: JSON lines carry the journal fields; secrets never reach the output."""

import io
import json
import logging

from skylab_watch.logs import fields, setup_logging


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
