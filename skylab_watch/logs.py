"""Logging setup: human text by default, one JSON object a line for log shippers.

Secrets never reach a handler: the client redacts its own debug lines, and
`SecretFilter` masks any configured secret that slips into a message anyway.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Iterable

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
FIELD_NAMES = ("WATCH", "JOB", "PHOTO")


def fields(watch: str | None = None, job: str | None = None, photo: str | None = None) -> dict[str, str]:
    """Return `extra=` for a log call: journal fields WATCH=, JOB=, PHOTO= (and JSON keys)."""
    found = {"WATCH": watch, "JOB": job, "PHOTO": photo}
    return {key: str(value) for key, value in found.items() if value is not None}


def under_systemd(env=None) -> bool:
    """Return True when systemd started us with stderr connected to the journal."""
    import os
    env = os.environ if env is None else env
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


def _journal_handler() -> logging.Handler | None:
    """Return a journald handler when systemd-python is installed, else None."""
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        return None
    return JournalHandler(SYSLOG_IDENTIFIER="skylab-watch")


class SecretFilter(logging.Filter):
    """Replace every occurrence of the given secrets in a record's message with [redacted]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "[redacted]")
                record.msg, record.args = message, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `fields` extra."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in FIELD_NAMES:
            value = getattr(record, key, None)
            if value is not None:
                entry[key.lower()] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text", secrets: Iterable[str] = (),
                  stream=None) -> logging.Handler:
    """Route skylab-watch's logs to stderr (or `stream`) in the chosen format; return the handler.

    Under systemd with systemd-python installed, text logs go to the journal
    with WATCH=, JOB= and PHOTO= fields; JSON always goes to stderr.
    """
    handler = _journal_handler() if fmt == "text" and stream is None and under_systemd() else None
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretFilter(secrets))
    root = logging.getLogger("skylab_watch")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    root.propagate = False
    return handler
