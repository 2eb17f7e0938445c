"""Checking a document against the schema, key by key.

`SchemaChecker` walks the parsed YAML along the `Option` tree derived from
the config classes, converts each value (paths resolved, numbers as floats),
fills in defaults, and collects every problem as a `Problem(path, message)`
instead of stopping at the first. Checks that span several keys or look at
the disk are in `folders.py` and `load.py`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from skylab_watch.config.schema import ALERT_EVENTS, REQUIRED, NotifyTarget, Option
from skylab_watch.errors import Problem
from skylab_watch.studio.transport import host_is_local

INVALID: Any = type("Invalid", (), {"__repr__": lambda self: "INVALID"})()
"""Stands for a value that failed its check; later checks skip it."""

_SLUG = re.compile(r"^[A-Za-z0-9_-]+$")


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
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str, fix: str = "") -> Any:
        """Record a problem at `path` and return INVALID."""
        self.problems.append(Problem(path, message, fix))
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

    def check_seconds(self, value: object, option: Option, path: str, unit: str = "seconds") -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return self.fail(path, f"must be a number of {unit}, got {_describe(value)}")
        if value <= 0:
            return self.fail(path, f"must be more than 0 {unit}, got {value!r}")
        return self._in_range(float(value), option, path)

    def check_hours(self, value: object, option: Option, path: str) -> Any:
        return self.check_seconds(value, option, path, unit="hours")

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

    def check_targets(self, value: object, option: Option, path: str) -> Any:
        """Apprise URLs, each a string or {url, events}. URLs often hold tokens: never echoed."""
        if not isinstance(value, list) or not value:
            return self.fail(path, f"must be a list of apprise URLs such as [\"json://host/path\"], "
                                   f"got {_describe(value, reveal=False)}")
        targets = [self._target(item, f"{path}[{i}]") for i, item in enumerate(value)]
        return INVALID if INVALID in targets else tuple(targets)

    def _target(self, item: object, path: str) -> Any:
        url, events = (item, None) if isinstance(item, str) else (None, None)
        if isinstance(item, dict):
            for key in item:
                if key not in ("url", "events"):
                    self.fail(_join(path, str(key)), _unknown_key(str(key), ["url", "events"]))
            url = item.get("url")
            if "events" in item:
                events = self._event_list(item["events"], _join(path, "events"))
            path = _join(path, "url")
        if not isinstance(url, str) or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$", url.strip()):
            return self.fail(path, "must be an apprise URL such as json://host/path or mailto://user:pass@host "
                                   f"(got {_describe(url, reveal=False)})")
        return INVALID if events is INVALID else NotifyTarget(url=url.strip(), events=events)

    def check_clock(self, value: object, option: Option, path: str) -> Any:
        """A local time HH:MM. YAML 1.1 reads an unquoted 7:00 as the number 420: say to quote it."""
        if isinstance(value, int) and not isinstance(value, bool):
            return self.fail(path, f"must be a time such as \"07:00\", got the number {value} (YAML reads an "
                                   "unquoted 7:00 as a number)", fix="put the time in quotes: \"07:00\"")
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value.strip()) if isinstance(value, str) else None
        if match is None:
            return self.fail(path, f"must be a local time HH:MM (24-hour) such as \"07:00\", got {_describe(value)}")
        return f"{int(match.group(1)):02}:{match.group(2)}"

    def check_events(self, value: object, option: Option, path: str) -> Any:
        return self._event_list(value, path)

    def _event_list(self, value: object, path: str) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            return self.fail(path, f"must be a list of events ({', '.join(ALERT_EVENTS)}), got {_describe(value)}")
        for name in value:
            if name not in ALERT_EVENTS:
                close = difflib.get_close_matches(str(name), ALERT_EVENTS, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                return self.fail(path, f"{name!r} is not an event; the events are {', '.join(ALERT_EVENTS)}{hint}")
        return tuple(dict.fromkeys(value))

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

    def long_enough_secret(self, secret: Any, path: str, minimum: int,
                           fix: str = "generate one with `openssl rand -hex 32` and set the same secret at Studio",
                           ) -> Any:
        """Return `secret` if it has at least `minimum` bytes, else record the problem (never echoing it)."""
        if not isinstance(secret, str):
            return secret  # absent, or already INVALID with its own problem
        size = len(secret.encode("utf-8"))
        if size < minimum:
            return self.fail(path, f"the secret is {size} byte(s) long; it must be at least {minimum} bytes "
                                   "so that it cannot be guessed",
                             fix=fix)
        return secret


def insecure_api_url(studio: Any) -> Problem | None:
    """Given the checked `studio` section, return the problem with a plain-http api_url on another machine.

    Over http the API key crosses the network in clear, to anyone on the
    path; only loopback (the emulator, a local tunnel) is safe without asking.
    """
    if not isinstance(studio, dict) or not isinstance(studio.get("api_url"), str):
        return None
    parts = urlsplit(studio["api_url"])
    if parts.scheme.lower() != "http" or host_is_local(parts.hostname or "") or studio.get("allow_insecure_http"):
        return None
    return Problem("studio.api_url", f"plain http to {parts.hostname} would send the API key in clear",
                   "use https://, or set studio.allow_insecure_http: true if the network between is trusted")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _unknown_key(key: str, names: list[str]) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return f"unknown key; the keys allowed here are {', '.join(names)}"
