"""Load the YAML configuration into typed, frozen objects, or report every problem.

Validation is offline and complete: one pass over the document collects every
problem (type, range, unknown key, missing key, folder layout) and raises a
single ConfigError naming each key path and the fix, so a person fixes the
file once instead of once per error. The keys live in `schema.py`, checked
key by key in `check.py`; this module adds the checks that span keys or the
environment (where the API key and the callback secret come from), and builds
the objects.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from skylab_watch.config.check import INVALID, SchemaChecker, insecure_api_url
from skylab_watch.config.folders import folder_problems
from skylab_watch.config.schema import MIN_CALLBACK_SECRET_BYTES, MIN_HTTP_TOKEN_BYTES, SCHEMA, Config, Option
from skylab_watch.errors import ConfigError, Problem

NO_API_KEY = "no API key: set studio.api_key, studio.api_key_file or the SKYLAB_API_KEY environment variable"


def load_config(path: str | Path, env: Mapping[str, str] | None = None, *, check_paths: bool = True,
                need_secrets: bool = True) -> Config:
    """Given a YAML file, return its Config; raise ConfigError listing every problem.

    `env` defaults to os.environ (SKYLAB_API_KEY, CREDENTIALS_DIRECTORY,
    STATE_DIRECTORY). Relative paths are resolved against the file's folder.
    need_secrets=False is for commands that only read the ledger (status,
    retry): they must work for a person who cannot read the API key file.
    """
    source = str(path)
    file = Path(path).expanduser().absolute()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([Problem(None, f"cannot read the configuration file: {reason}", "check the path")],
                          source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(None, f"the configuration file is not UTF-8 text ({exc.reason})")],
                          source) from None
    data = _parse_yaml(text, source)
    config = parse_config(data, source, file.parent, env, check_paths=check_paths, need_secrets=need_secrets)
    return dataclasses.replace(config, source=file, warnings=exposed_secret_warnings(file, data, config))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)):
                continue
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in the same mapping; keep one", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> object:
    """Given YAML text, return the document; raise ConfigError with line and column if it cannot be parsed."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown place"
        context = f" ({exc.context})" if exc.context else ""
        raise ConfigError([Problem(None, f"cannot parse the YAML at {where}: {exc.problem}{context}")],
                          source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(None, f"cannot parse the YAML: {exc}")], source) from None


def parse_config(
    data: object,
    source: str = "config",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    check_paths: bool = True,
    need_secrets: bool = True,
) -> Config:
    """Given a parsed YAML document, return its Config; raise ConfigError listing every problem.

    Relative paths are resolved against `base_dir` (default: the current
    folder). With `check_paths=False` the folders are not looked at (only
    how they relate to each other), which validates a config meant for
    another machine; key and secret files are still read.
    """
    env = os.environ if env is None else env
    checker = SchemaChecker(Path(base_dir) if base_dir is not None else Path.cwd())
    values = checker.section({} if data is None else data, SCHEMA, "")
    if values is INVALID:
        raise ConfigError(checker.problems, source)
    if need_secrets:
        api_key = find_api_key(values["studio"], env, checker)
        secret = find_callback_secret(values["callback"], checker)
        token = find_http_token(values["http"], checker)
    else:
        api_key, secret, token = "", "", ""
    checker.problems += folder_problems(values["watches"], check_paths)
    checker.problems += [p for p in [insecure_api_url(values["studio"])] if p is not None]
    checker.problems += notifier_problems(values["notify"])
    checker.problems += report_problems(values["report"], values["notify"])
    if checker.problems:
        raise ConfigError(checker.problems, source)
    config = build(Config, SCHEMA, values)
    if isinstance(data, dict) and data.get("ledger") is None and env.get("STATE_DIRECTORY"):
        config = dataclasses.replace(config, ledger=Path(env["STATE_DIRECTORY"].split(":")[0]) / "ledger.sqlite3")
    callback = config.callback and dataclasses.replace(config.callback, secret=secret)
    http = config.http and dataclasses.replace(config.http, token=token)
    return dataclasses.replace(config, studio=dataclasses.replace(config.studio, api_key=api_key), callback=callback,
                               http=http)


def build(record: type, options: tuple[Option, ...], values: dict) -> Any:
    """Given checked values of a section, return its record, building nested sections and lists."""
    fields: dict[str, Any] = {}
    for option in options:
        value = values[option.name]
        if option.kind == "section" and value is not None:
            value = build(_record_of(option), option.children, value)
        elif option.kind == "list":
            value = tuple(build(_record_of(option), option.children, entry) for entry in value)
        fields[option.name] = value
    return record(**fields)


def _record_of(option: Option) -> type:
    """Return the class a section or list option is built into (the schema gives every one a record)."""
    assert option.record is not None, f"schema: the {option.kind} {option.name} has no record"
    return option.record


# --- where secrets come from -------------------------------------------------

MIN_API_KEY_LENGTH = 8
"""Shorter than this, an API key is a typo or a placeholder ("x", "test"), never a Studio key.

Refusing it at load turns a puzzling 401 into a clear config error, and it
means the key can always be masked wherever it appears in a log line
(see redaction.SHORTEST_SUBSTRING_SECRET)."""


def find_api_key(studio: Any, env: Mapping[str, str], checker: SchemaChecker) -> Any:
    """Return the API key from the first source that has one:
    studio.api_key, studio.api_key_file, $SKYLAB_API_KEY, $CREDENTIALS_DIRECTORY/api_key.
    """
    if studio is INVALID or studio["api_key"] is INVALID or studio["api_key_file"] is INVALID:
        return INVALID
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if studio["api_key"]:
        key, path, where = studio["api_key"], "studio.api_key", ""
    elif studio["api_key_file"]:
        key = checker.read_secret(studio["api_key_file"], "studio.api_key_file", "API key")
        path, where = "studio.api_key_file", f" in {studio['api_key_file']}"
    elif env.get("SKYLAB_API_KEY", "").strip():
        key, path, where = env["SKYLAB_API_KEY"].strip(), "studio.api_key", " in $SKYLAB_API_KEY"
    elif credentials and (Path(credentials) / "api_key").is_file():
        key = checker.read_secret(Path(credentials) / "api_key", "studio.api_key", "API key")
        path, where = "studio.api_key", " in the systemd credential api_key"
    else:
        return checker.fail("studio.api_key", NO_API_KEY)
    if isinstance(key, str) and len(key) < MIN_API_KEY_LENGTH:
        return checker.fail(path, f"the API key{where} is {len(key)} character(s) long: too short to be a "
                                  f"Studio API key (at least {MIN_API_KEY_LENGTH})",
                            "copy the key again from Studio's account settings")
    return key


def find_callback_secret(callback: Any, checker: SchemaChecker) -> Any:
    """Return the callback secret (callback.secret, else callback.secret_file), or None if there is no callback."""
    if callback is None or callback is INVALID:
        return None
    if callback["secret"] is INVALID or callback["secret_file"] is INVALID:
        return INVALID
    if callback["secret"]:
        return checker.long_enough_secret(callback["secret"], "callback.secret", MIN_CALLBACK_SECRET_BYTES)
    if callback["secret_file"]:
        secret = checker.read_secret(callback["secret_file"], "callback.secret_file", "shared secret")
        return checker.long_enough_secret(secret, "callback.secret_file", MIN_CALLBACK_SECRET_BYTES)
    return checker.fail("callback.secret_file", "is required when callback is set: a file holding the "
                                                "secret Studio signs callbacks with (or set callback.secret)")


def find_http_token(http: Any, checker: SchemaChecker) -> Any:
    """Return the HTTP surface's token read from http.token_file, or None if there is no http section."""
    if http is None or http is INVALID or http["token_file"] is INVALID:
        return None if http is None else INVALID
    token = checker.read_secret(http["token_file"], "http.token_file", "token")
    return checker.long_enough_secret(token, "http.token_file", MIN_HTTP_TOKEN_BYTES,
                                      fix="generate one with `openssl rand -hex 32 > FILE` (mode 600)")


# --- notifiers ----------------------------------------------------------------

def notifier_problems(notify: Any) -> list[Problem]:
    """Given the checked notify section, return why its URLs cannot be used: apprise missing, or a URL
    apprise does not understand. apprise is imported only here and only when URLs are configured."""
    if not notify or notify is INVALID or not notify["urls"] or notify["urls"] is INVALID:
        return []
    try:
        import apprise
    except ImportError:
        return [Problem("notify.urls", "needs apprise, which is not installed",
                        "pip install 'skylab-watch[notify]' (or remove notify.urls)")]
    return [Problem(f"notify.urls[{i}]", "apprise does not understand this URL (the URL is not shown: it may "
                                          "hold a token)", "see https://github.com/caronc/apprise/wiki for the formats")
            for i, target in enumerate(notify["urls"]) if apprise.Apprise.instantiate(target.url) is None]


def report_problems(report: Any, notify: Any) -> list[Problem]:
    """Given the checked report and notify sections, return the problem of a report no notifier takes."""
    if not report or report is INVALID or notify is INVALID:
        return []
    urls = notify["urls"] if notify else None
    if urls is INVALID:
        return []
    default = notify["events"] if notify and notify["events"] is not INVALID else ()
    if any("report" in (t.events if t.events is not None else default) for t in urls or ()):
        return []
    return [Problem("report.at", "the report is sent through notify.urls, and no URL there takes the report event",
                    "add notify.urls (or add report to the events of one), or remove the report section")]


# --- secrets that others can read ---------------------------------------------

def exposed_secret_warnings(file: Path, data: object, config: Config) -> tuple[Problem, ...]:
    """Given the config file, its document and its Config, return a warning for each secret others can read.

    The config file holding a key inline (studio.api_key, callback.secret) is
    flagged when every user can read it (group-readable is the documented
    way to share it with the daemon's group); a file that exists only to hold
    a key (studio.api_key_file, callback.secret_file) when its group or
    others can. Mode bits, not access checks, so the verdict is the same when
    root runs the command.
    """
    warnings = []
    for path, what in (("studio.api_key", "the API key"), ("callback.secret", "the callback secret")):
        if _inline_value(data, path):
            warnings += _readable_warning(file, path, 0o004, f"{what} is inline in {file}",
                                          " (or move it to its own file, see *_file)")
    files = (("studio.api_key_file", "the API key", config.studio.api_key_file),
             ("callback.secret_file", "the callback secret", config.callback.secret_file if config.callback else None),
             ("http.token_file", "the HTTP token", config.http.token_file if config.http else None))
    for path, what, secret_file in files:
        if secret_file is not None:
            warnings += _readable_warning(secret_file, path, 0o044, f"{secret_file} holds {what}")
    return tuple(warnings)


def _inline_value(data: object, path: str) -> bool:
    """Return True when the document gives a value at `path` (a dotted key path of two parts)."""
    section, key = path.split(".")
    part = data.get(section) if isinstance(data, dict) else None
    return isinstance(part, dict) and bool(part.get(key))


def _readable_warning(file: Path, path: str, forbidden: int, subject: str, also: str = "") -> list[Problem]:
    """Return a warning when `file`'s mode has any of the `forbidden` read bits, else []."""
    try:
        mode = file.stat().st_mode & 0o777
    except OSError:
        return []  # unreadable or missing: loading reports it if it matters
    if not mode & forbidden:
        return []
    who = " and ".join(name for bit, name in ((0o040, "its group"), (0o004, "every user")) if mode & forbidden & bit)
    return [Problem(path, f"{subject}: {who} can read it (mode {mode:04o})",
                    f"run `chmod 600 {file}`, owned by the user the daemon runs as{also}")]
