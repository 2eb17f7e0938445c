"""The configuration schema: every key, its type, default and one-line description.

This table is the one place where options are defined. `SchemaChecker` checks
a YAML document against it (types, ranges, unknown and missing keys) and fills
in the defaults; `skylab_watch.config` adds the checks that span keys or look
at the disk. `config.example.yaml` is generated from the table, so the sample
can never drift from what the program accepts:

    python -m skylab_watch.config_schema > config.example.yaml
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class _Required:
    """Marker default of an option the user must set."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# The kinds of value; SchemaChecker has one check_<kind> method for each.
KINDS = (
    "str", "secret", "url", "slug", "int", "seconds", "bool", "path",
    "choice", "patterns", "profile", "listen", "section", "list",
)


@dataclass(frozen=True)
class Option:
    """One configuration key.

    `default` is the value used when the key is absent: REQUIRED means the
    user must set it, None means "absent" (for a section: the feature is off).
    `example` is what config.example.yaml shows when there is no default; an
    optional key is shown commented out unless `show` is true. `minimum` and
    `maximum` bound numbers (inclusive); `maximum_why` says why the maximum exists.
    """

    name: str
    kind: str
    description: str
    default: Any = None
    example: Any = None
    minimum: float | None = None
    maximum: float | None = None
    maximum_why: str = ""
    choices: tuple[str, ...] = ()
    children: tuple["Option", ...] = ()
    show: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"option {self.name}: unknown kind {self.kind!r}")


def section(name: str, description: str, *children: Option, optional: bool = False) -> Option:
    """Return a mapping option; absent means all defaults, or off if `optional`."""
    return Option(name, "section", description, default=None if optional else {}, children=children)


RETRY = section(
    "retry", "How a failed API call is retried, waiting longer after each attempt.",
    Option("max_attempts", "int", "Give up on one API call after this many attempts.", 6, minimum=1),
    Option("max_seconds", "seconds", "Give up on one API call after this many seconds in total.", 120),
    Option("initial_seconds", "seconds", "Wait before the first retry; the wait doubles each time.", 1.0),
    Option("max_backoff_seconds", "seconds", "Never wait longer than this between two attempts.", 30),
)

STUDIO = section(
    "studio", "How to reach the Skylab Studio API.",
    Option("api_url", "url", "Base URL of the Skylab Studio API.", "https://studio.skylabtech.ai"),
    Option("api_key", "secret",
           "API key inline; first of api_key, api_key_file, $SKYLAB_API_KEY, "
           "$CREDENTIALS_DIRECTORY/api_key wins.", example="your-studio-api-key"),
    Option("api_key_file", "path", "File holding the API key (surrounding whitespace is ignored).",
           example="/etc/skylab-watch/api_key"),
    Option("connect_timeout", "seconds", "Seconds to wait for a connection to the API.", 10),
    Option("read_timeout", "seconds", "Seconds to wait for the API to answer once connected.", 60),
    RETRY,
)

BATCH = section(
    "batch", "When the photos waiting in a watch are closed into one Studio job.",
    Option("max_photos", "int", "Close the job once it holds this many photos.", 100,
           minimum=1, maximum=1000,
           maximum_why="big jobs delay every photo in them until the whole job is done"),
    Option("quiet_seconds", "seconds", "Close the job when no new photo has arrived for this long.", 30),
    Option("max_wait_seconds", "seconds", "Close the job this long after its first photo, however busy.", 600),
)

WATCH = (
    Option("name", "slug", "Name used in logs, job names and the ledger (letters, digits, - and _).",
           REQUIRED, example="packshots"),
    Option("input", "path", "Folder to watch for new photos.", REQUIRED, example="/srv/studio/in/packshots"),
    Option("output", "path", "Folder the retouched photos are written to; created if its parent exists.",
           REQUIRED, example="/srv/studio/out/packshots"),
    Option("profile", "profile", "Studio profile to apply: its numeric id, or its name to look up.",
           REQUIRED, example=123),
    Option("recursive", "bool", "Also watch sub-folders; outputs mirror the sub-folder layout.", True),
    Option("observer", "choice", "How new files are noticed: native events, or polling for SMB/NFS shares.",
           "native", choices=("native", "polling")),
    Option("settle_seconds", "seconds", "A file is complete once its size and time stay unchanged this long.", 3),
    BATCH,
    Option("after_success", "choice", "What happens to an original once its retouched photo is written.",
           "keep", choices=("keep", "archive", "delete")),
    Option("archive_dir", "path", "Where originals are moved when after_success is archive.",
           example="/srv/studio/archive/packshots"),
    Option("include", "patterns", "Glob patterns of file names to send; empty means every file.", ()),
    Option("exclude", "patterns", "Glob patterns of file names never to send, even if included.",
           (".*", "*~", "*.part", "*.tmp", "*.crdownload")),
    Option("resize_oversized", "bool", "Shrink photos over Studio's size limit instead of failing them.", False),
    Option("skip_duplicate_content", "bool", "Do not send a file whose content this watch already sent.", True),
    Option("unreadable_grace_seconds", "seconds",
           "A settled file whose image cannot be read is rejected after waiting this long.", 60),
    Option("rescan_seconds", "seconds", "Rescan the whole input this often, in case an event was missed.", 300),
    Option("poll_interval_seconds", "seconds", "With observer: polling, how often the input is listed.", 5),
    Option("delivery_timeout_seconds", "seconds",
           "Mark a photo failed if Studio has not delivered it within this long.", 86400),
)

SCHEMA: tuple[Option, ...] = (
    STUDIO,
    Option("ledger", "path",
           "SQLite file recording every photo's progress; under systemd $STATE_DIRECTORY/ledger.sqlite3.",
           "/var/lib/skylab-watch/ledger.sqlite3"),
    Option("watches", "list", "The folders to watch; each sends its photos with one Studio profile.",
           REQUIRED, children=WATCH),
    section("uploads", "Sending photos to Studio.",
            Option("concurrency", "int", "Photos uploaded at the same time.", 4, minimum=1)),
    section("downloads", "Fetching retouched photos from Studio.",
            Option("concurrency", "int", "Retouched photos downloaded at the same time.", 4, minimum=1)),
    section("polling", "Asking Studio how open jobs are doing.",
            Option("interval_seconds", "seconds", "Ask Studio about open jobs this often.", 15)),
    section("credits", "Running out of Studio credits.",
            Option("retry_seconds", "seconds", "While out of credits, try again this often.", 300)),
    section(
        "callback", "Let Studio call this daemon when a job is done, instead of waiting for a poll.",
        Option("listen", "listen", "Address and port the callback server listens on.", "127.0.0.1:8790"),
        Option("public_url", "url", "URL at which Studio reaches the callback server.",
               REQUIRED, example="https://watch.example.com/skylab-callback"),
        Option("secret", "secret", "Shared secret inline; secret_file is preferred.",
               example="a-long-random-string"),
        Option("secret_file", "path", "File holding the shared secret Studio signs callbacks with.",
               example="/etc/skylab-watch/callback_secret", show=True),
        optional=True,
    ),
    section(
        "logging", "What is logged and how.",
        Option("level", "choice", "Least severe messages logged.", "info",
               choices=("debug", "info", "warning", "error")),
        Option("format", "choice", "text for people, json for log collectors.", "text", choices=("text", "json")),
    ),
)


# --- checking a document against the schema ------------------------------

INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()
"""Stands for a value that failed its check; later checks skip it."""

_SLUG = re.compile(r"^[A-Za-z0-9_-]+$")


def _at(path: str) -> str:
    return f"At '{path}'" if path else "At the top level"


def _describe(value: object, reveal: bool = True) -> str:
    """Return how a wrong value is shown in a message; secrets are never echoed."""
    kinds = {bool: "true/false", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "a mapping", type(None): "nothing"}
    kind = kinds.get(type(value), type(value).__name__)
    if not reveal or isinstance(value, (list, dict)) or value is None:
        return kind
    return f"{value!r} ({kind})"


class SchemaChecker:
    """Walks a document along the schema, converting values and collecting every problem.

    Each kind of value has a `check_<kind>` method returning the converted
    value, or INVALID after recording a problem, so checking goes on.
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> Any:
        """Record a problem at `path` and return INVALID."""
        self.problems.append(f"{_at(path)}: {message}")
        return INVALID

    def section(self, value: object, options: tuple[Option, ...], path: str) -> Any:
        """Given a mapping, return it checked with defaults filled in; INVALID if it is not a mapping."""
        if not isinstance(value, dict):
            return self.fail(path, f"must be a mapping of keys to values, got {_describe(value)}")
        names = [o.name for o in options]
        for key in value:
            if key not in names:
                self.fail(_join(path, str(key)), _unknown_key(str(key), names))
        return {o.name: self.option(value.get(o.name), o, _join(path, o.name)) for o in options}

    def option(self, value: object, option: Option, path: str) -> Any:
        """Return one option's checked value, its default if absent, or INVALID."""
        if value is None:
            if option.default is REQUIRED:
                return self.fail(path, f"is required: add it ({option.description.rstrip('.')})")
            if option.default is None:
                return None
            value = option.default
        return getattr(self, f"check_{option.kind}")(value, option, path)

    def check_section(self, value: object, option: Option, path: str) -> Any:
        return self.section(value, option.children, path)

    def check_list(self, value: object, option: Option, path: str) -> Any:
        if not isinstance(value, list) or not value:
            return self.fail(path, f"must be a list with at least one entry, got {_describe(value)}")
        return tuple(self.section(item, option.children, f"{path}[{i}]") for i, item in enumerate(value))

    def check_str(self, value: object, option: Option, path: str, reveal: bool = True) -> Any:
        if not isinstance(value, str) or not value.strip():
            return self.fail(path, f"must be a non-empty string, got {_describe(value, reveal)}")
        return value.strip()

    def check_secret(self, value: object, option: Option, path: str) -> Any:
        return self.check_str(value, option, path, reveal=False)

    def check_url(self, value: object, option: Option, path: str) -> Any:
        if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
            return self.fail(path, f"must be an http:// or https:// URL, got {_describe(value)}")
        return value.rstrip("/")

    def check_slug(self, value: object, option: Option, path: str) -> Any:
        if not isinstance(value, str) or not _SLUG.match(value):
            return self.fail(path, "must use only letters, digits, '-' and '_' (it becomes part of "
                                   f"job and file names), got {_describe(value)}")
        return value

    def check_int(self, value: object, option: Option, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return self.fail(path, f"must be a whole number, got {_describe(value)}")
        return self._in_range(value, option, path)

    def check_seconds(self, value: object, option: Option, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return self.fail(path, f"must be a number of seconds, got {_describe(value)}")
        if value <= 0:
            return self.fail(path, f"must be more than 0 seconds, got {value!r}")
        return self._in_range(float(value), option, path)

    def _in_range(self, number: float, option: Option, path: str) -> Any:
        if option.minimum is not None and number < option.minimum:
            return self.fail(path, f"must be at least {option.minimum:g}, got {number!r}")
        if option.maximum is not None and number > option.maximum:
            why = f" ({option.maximum_why})" if option.maximum_why else ""
            return self.fail(path, f"must be at most {option.maximum:g}{why}, got {number!r}")
        return number

    def check_bool(self, value: object, option: Option, path: str) -> Any:
        if not isinstance(value, bool):
            return self.fail(path, f"must be true or false, got {_describe(value)}")
        return value

    def check_path(self, value: object, option: Option, path: str) -> Any:
        if not isinstance(value, str) or not value.strip():
            return self.fail(path, f"must be a path, got {_describe(value)}")
        return Path(os.path.normpath(self.base_dir / Path(value.strip()).expanduser()))

    def check_choice(self, value: object, option: Option, path: str) -> Any:
        if value in option.choices:
            return value
        close = difflib.get_close_matches(str(value), option.choices, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return self.fail(path, f"must be one of {', '.join(option.choices)}, got {_describe(value)}{hint}")

    def check_patterns(self, value: object, option: Option, path: str) -> Any:
        if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p for p in value):
            return self.fail(path, f"must be a list of glob patterns such as [\"*.jpg\"], got {_describe(value)}")
        return tuple(value)

    def check_profile(self, value: object, option: Option, path: str) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        if isinstance(value, str) and value.strip():
            return value.strip()
        return self.fail(path, "must be a profile id (a whole number of at least 1) or a profile name, "
                               f"got {_describe(value)}")

    def check_listen(self, value: object, option: Option, path: str) -> Any:
        host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            return self.fail(path, f"must be HOST:PORT such as 127.0.0.1:8790, got {_describe(value)}")
        return host.strip("[]"), int(port)

    def read_secret(self, file: Path, path: str, what: str) -> Any:
        """Return the stripped content of a key or secret file, or record why it cannot be used."""
        try:
            text = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            return self.fail(path, f"cannot read {file}: {exc.strerror or exc}; check the path "
                                   "and that this user may read the file")
        except UnicodeDecodeError:
            return self.fail(path, f"{file} is not UTF-8 text; put the {what} in it as plain text")
        if not text:
            return self.fail(path, f"{file} is empty; put the {what} in it")
        return text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown_key(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return f"unknown key; the keys allowed here are {', '.join(names)}"


# --- config.example.yaml -------------------------------------------------

HEADER = """\
# skylab-watch configuration. Generated from skylab_watch/config_schema.py:
#   python -m skylab_watch.config_schema > config.example.yaml
# Every key is listed with its description and default. Relative paths are
# resolved against this file's folder; ~ is expanded.
# Check a configuration with: skylab-watch check-config --config FILE
"""


def render_example() -> str:
    """Return the text of config.example.yaml, generated from SCHEMA."""
    return HEADER + "\n" + "\n".join(_render_options(SCHEMA, 0)) + "\n"


def _render_options(options: tuple[Option, ...], indent: int) -> list[str]:
    """Return the example lines of `options`, each preceded by its description."""
    lines: list[str] = []
    for option in options:
        pad = " " * indent
        lines.append(f"{pad}# {option.description} {_default_note(option)}".rstrip())
        body = _render_value(option, indent)
        if option.default is None and not option.show:
            body = [f"{pad}# {line[indent:]}" for line in body]
        lines.extend(body)
        if indent == 0:
            lines.append("")
    return lines


def _render_value(option: Option, indent: int) -> list[str]:
    """Return the lines of `option: value`, uncommented."""
    pad = " " * indent
    if option.kind == "section":
        return [f"{pad}{option.name}:", *_render_options(option.children, indent + 2)]
    if option.kind == "list":
        item = _render_options(option.children, indent + 4)
        first = next(i for i, line in enumerate(item) if not line.lstrip().startswith("#"))
        item[first] = f"{pad}  - {item[first].lstrip()}"
        return [f"{pad}{option.name}:", *item]
    value = option.example if option.default in (None, REQUIRED) else option.default
    return [f"{pad}{option.name}: {format_value(value)}"]


def _default_note(option: Option) -> str:
    """Return the 'Default: ...' part of an option's comment."""
    if option.default is REQUIRED:
        return "Required."
    if option.default is None:
        return "Optional." if option.kind != "section" else "Optional: absent means off."
    if option.kind == "section":
        return ""
    return f"Default: {format_value(option.default)}."


_PLAIN = re.compile(r"^[A-Za-z0-9/_][A-Za-z0-9/_.:+-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def format_value(value: Any) -> str:
    """Return `value` as a YAML flow scalar or list that reads back as the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    if isinstance(value, str):
        plain = _PLAIN.match(value) and value.lower() not in _YAML_WORDS and not _is_number(value)
        return value if plain else json.dumps(value)
    return repr(value)


def _is_number(text: str) -> bool:
    """Tell whether YAML would read `text` as a number rather than a string."""
    try:
        float(text)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    print(render_example(), end="")
