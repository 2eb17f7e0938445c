"""Logging setup: human text by default, one JSON object a line for log shippers.

Nothing unsafe reaches a handler: `SecretFilter` masks every configured
secret and every presigned URL's query, in messages and tracebacks alike, and
escapes control characters, whatever the format (text, JSON, journald). The
client also redacts its own debug lines, which keeps them safe outside logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Iterable

from skylab_watch.printable import printable
from skylab_watch.redaction import SecretMasker

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
    """Make every record safe to write before any handler formats it.

    For the message, the traceback (`exc_info`, formatted here and kept as
    `exc_text`), the stack (`stack_info`) and the WATCH/JOB/PHOTO fields:
    configured secrets are masked (see `SecretMasker`), every URL query value
    is redacted (presigned links, whoever logged them and at whatever level),
    and control characters are escaped with `printable`, so a file name
    holding a newline or a terminal escape stays one visible line. Done once
    here, for every format, rather than at each call site.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self.masker = SecretMasker(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(self.masker.clean(_message_of(record))), None
        if record.exc_info:
            record.exc_text = record.exc_text or _EXCEPTION_FORMATTER.formatException(record.exc_info)
            record.exc_info = None  # handlers that format exc_info themselves (journald) would unmask it
        if record.exc_text:
            record.exc_text = self._clean_block(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean_block(record.stack_info)
        for name in FIELD_NAMES:
            value = getattr(record, name, None)
            if value is not None:
                setattr(record, name, printable(self.masker.clean(str(value))))
        return True

    def _clean_block(self, text: str) -> str:
        """Clean multi-line text (a traceback) line by line, keeping its line breaks."""
        return "\n".join(printable(line) for line in self.masker.clean(text).split("\n"))


_EXCEPTION_FORMATTER = logging.Formatter()


def _message_of(record: logging.LogRecord) -> str:
    """Return the record's message; a call whose arguments do not fit its format is shown, not raised."""
    try:
        return record.getMessage()
    except Exception:  # noqa: BLE001 - a filter must never raise into the code that logged
        return f"{record.msg!r} (arguments that do not fit the format: {record.args!r})"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any `fields` extra.

    The message is the one `SecretFilter` cleaned, so it reads exactly as in
    text logs: control characters already escaped. json.dumps alone would let
    DEL, C1 controls and undecodable bytes through (with ensure_ascii=False).
    """

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
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text", secrets: Iterable[str | None] = (),
                  stream=None, console=None) -> logging.Handler:
    """Route skylab-watch's logs to stderr (or `stream`) in the chosen format; return the handler.

    Under systemd with systemd-python installed, text logs go to the journal
    with WATCH=, JOB= and PHOTO= fields; JSON always goes to stderr. With a
    rich `console` (the live view is on: `skylab_watch.live.terminal_console`)
    text logs go through rich's handler, which prints them above the view.
    urllib3's warnings (some quote a whole request URL) take the same filtered
    handler instead of Python's unfiltered last-resort one.
    """
    handler = _journal_handler() if fmt == "text" and stream is None and under_systemd() else None
    if handler is None and console is not None and fmt == "text":
        handler = _rich_handler(console)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretFilter(secrets))
    chosen = getattr(logging, level.upper(), logging.INFO)
    _route(logging.getLogger("skylab_watch"), handler, chosen)
    _route(logging.getLogger("urllib3"), handler, max(chosen, logging.WARNING))
    return handler


def _rich_handler(console) -> logging.Handler:
    """Return rich's handler on `console`: time and level in columns, the message as plain text.

    No markup (a file name in brackets stays as it is) and no rich
    tracebacks: `SecretFilter` has already cleaned the message and put the
    traceback text in `exc_text`, which the plain formatter appends.
    """
    from rich.logging import RichHandler
    handler = RichHandler(console=console, show_path=False, markup=False, rich_tracebacks=False,
                          log_time_format="%Y-%m-%d %H:%M:%S", omit_repeated_times=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _route(logger: logging.Logger, handler: logging.Handler, level: int) -> None:
    """Make `handler` the only one of `logger`, at `level`, without passing records up to the root."""
    for old in list(logger.handlers):
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
