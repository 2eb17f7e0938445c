"""Load the YAML configuration into typed, frozen objects, or report every problem.

Validation is offline and complete: one pass over the document collects every
problem (type, range, unknown key, missing key, folder layout) and raises a
single ConfigError naming each key path and the fix, so a person fixes the
file once instead of once per error. The keys, defaults, descriptions and
per-key checks live in `skylab_watch.config_schema`; this module adds the
checks that span keys, the environment or the disk, and builds the objects.
Looking up profile names needs the Studio API and is done separately by
`resolve_profiles`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any, Mapping

import yaml

from skylab_watch.config_schema import INVALID, SCHEMA, SchemaChecker
from skylab_watch.errors import ConfigError

__all__ = [
    "BatchConfig", "CallbackConfig", "Config", "RetryConfig", "StudioConfig", "WatchConfig",
    "load_config", "parse_config", "resolve_profiles",
]

NO_API_KEY = "no API key: set studio.api_key, studio.api_key_file or the SKYLAB_API_KEY environment variable"


@dataclass(frozen=True)
class RetryConfig:
    max_attempts: int
    max_seconds: float
    initial_seconds: float
    max_backoff_seconds: float


@dataclass(frozen=True)
class StudioConfig:
    api_url: str
    api_key: str = field(repr=False)
    connect_timeout: float
    read_timeout: float
    retry: RetryConfig


@dataclass(frozen=True)
class BatchConfig:
    max_photos: int
    quiet_seconds: float
    max_wait_seconds: float


@dataclass(frozen=True)
class WatchConfig:
    name: str
    input: Path
    output: Path
    profile: int | str
    recursive: bool
    observer: str
    settle_seconds: float
    batch: BatchConfig
    after_success: str
    archive_dir: Path | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    resize_oversized: bool
    skip_duplicate_content: bool
    rescan_seconds: float
    poll_interval_seconds: float
    delivery_timeout_seconds: float
    unreadable_grace_seconds: float = 60.0


@dataclass(frozen=True)
class CallbackConfig:
    host: str
    port: int
    public_url: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Config:
    source: Path | None
    studio: StudioConfig
    ledger: Path
    watches: tuple[WatchConfig, ...]
    upload_concurrency: int
    download_concurrency: int
    poll_interval_seconds: float
    credits_retry_seconds: float
    callback: CallbackConfig | None
    log_level: str
    log_format: str

    def watch(self, name: str) -> WatchConfig:
        """Given a watch name, return its WatchConfig; raise KeyError if there is none."""
        for watch in self.watches:
            if watch.name == name:
                return watch
        known = ", ".join(w.name for w in self.watches)
        raise KeyError(f"no watch named {name!r} (known: {known})")


# --- loading ---------------------------------------------------------------

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
        raise ConfigError([f"cannot read the configuration file: {reason}; check the path"], source) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"the configuration file is not UTF-8 text ({exc.reason})"], source) from None
    data = _parse_yaml(text, source)
    config = parse_config(data, source, file.parent, env, check_paths=check_paths, need_secrets=need_secrets)
    return dataclasses.replace(config, source=file)


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
        raise ConfigError([f"cannot parse the YAML at {where}: {exc.problem}{context}"], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"cannot parse the YAML: {exc}"], source) from None


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
        api_key = _find_api_key(values["studio"], env, checker)
        secret = _find_callback_secret(values["callback"], checker)
    else:
        api_key, secret = "", ""
    _check_watches(values["watches"], checker, check_paths)
    if checker.problems:
        raise ConfigError(checker.problems, source)
    ledger = values["ledger"]
    if isinstance(data, dict) and data.get("ledger") is None and env.get("STATE_DIRECTORY"):
        ledger = Path(env["STATE_DIRECTORY"].split(":")[0]) / "ledger.sqlite3"
    return _build_config(values, api_key, secret, ledger)


def _build_config(values: dict, api_key: str, secret: str | None, ledger: Path) -> Config:
    """Given checked values, return the typed Config."""
    studio = values["studio"]
    callback = values["callback"]
    return Config(
        source=None,
        studio=StudioConfig(
            api_url=studio["api_url"], api_key=api_key, connect_timeout=studio["connect_timeout"],
            read_timeout=studio["read_timeout"], retry=RetryConfig(**studio["retry"])),
        ledger=ledger,
        watches=tuple(
            WatchConfig(**{**w, "batch": BatchConfig(**w["batch"])}) for w in values["watches"]),
        upload_concurrency=values["uploads"]["concurrency"],
        download_concurrency=values["downloads"]["concurrency"],
        poll_interval_seconds=values["polling"]["interval_seconds"],
        credits_retry_seconds=values["credits"]["retry_seconds"],
        callback=None if callback is None else CallbackConfig(
            host=callback["listen"][0], port=callback["listen"][1],
            public_url=callback["public_url"], secret=secret),
        log_level=values["logging"]["level"],
        log_format=values["logging"]["format"],
    )


# --- checks across keys ----------------------------------------------------

def _find_api_key(studio: Any, env: Mapping[str, str], checker: SchemaChecker) -> Any:
    """Return the API key from the first source that has one:
    studio.api_key, studio.api_key_file, $SKYLAB_API_KEY, $CREDENTIALS_DIRECTORY/api_key.
    """
    if studio is INVALID or studio["api_key"] is INVALID or studio["api_key_file"] is INVALID:
        return INVALID
    if studio["api_key"]:
        return studio["api_key"]
    if studio["api_key_file"]:
        return checker.read_secret(studio["api_key_file"], "studio.api_key_file", "API key")
    if env.get("SKYLAB_API_KEY", "").strip():
        return env["SKYLAB_API_KEY"].strip()
    credentials = env.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / "api_key").is_file():
        return checker.read_secret(Path(credentials) / "api_key", "studio.api_key", "API key")
    return checker.fail("studio.api_key", NO_API_KEY)


def _find_callback_secret(callback: Any, checker: SchemaChecker) -> Any:
    """Return the callback secret (callback.secret, else callback.secret_file), or None if there is no callback."""
    if callback is None or callback is INVALID:
        return None
    if callback["secret"] is INVALID or callback["secret_file"] is INVALID:
        return INVALID
    if callback["secret"]:
        return callback["secret"]
    if callback["secret_file"]:
        return checker.read_secret(callback["secret_file"], "callback.secret_file", "shared secret")
    return checker.fail("callback.secret_file", "is required when callback is set: a file holding the "
                                                "secret Studio signs callbacks with (or set callback.secret)")


def _check_watches(watches: Any, checker: SchemaChecker, check_paths: bool) -> None:
    """Record problems in each watch's folders and between watches."""
    if watches is INVALID:
        return
    valid = [(i, w) for i, w in enumerate(watches) if w is not INVALID]
    for i, watch in valid:
        _check_watch(f"watches[{i}]", watch, checker, check_paths)
    _check_names_unique(valid, checker)
    _check_inputs_apart(valid, checker)


def _check_watch(path: str, watch: dict, checker: SchemaChecker, check_paths: bool) -> None:
    """Record problems with one watch's input, output and archive folders."""
    source, output, archive = watch["input"], watch["output"], watch["archive_dir"]
    if check_paths:
        _check_input_folder(source, f"{path}.input", checker)
        _check_creatable_folder(output, f"{path}.output", checker)
        _check_creatable_folder(archive, f"{path}.archive_dir", checker)
    if watch["after_success"] == "archive" and archive is None:
        checker.fail(f"{path}.archive_dir", "is required when after_success is archive: "
                                            "the folder originals are moved to")
    if source is INVALID:
        return
    if output is not INVALID and _inside(output, source):
        checker.fail(f"{path}.output", f"{output} is inside the input folder {source}; retouched photos "
                                       "would be sent again: choose an output outside the input")
    elif output is not INVALID and _inside(source, output):
        checker.fail(f"{path}.input", f"{source} is inside the output folder {output}; "
                                      "choose an input outside the output")
    if archive not in (None, INVALID) and _inside(archive, source):
        checker.fail(f"{path}.archive_dir", f"{archive} is inside the input folder {source}; archived "
                                            "originals would be sent again: choose a folder outside the input")


def _check_input_folder(folder: Any, path: str, checker: SchemaChecker) -> None:
    if folder is INVALID:
        return
    if not folder.exists():
        checker.fail(path, f"folder {folder} does not exist; create it or correct the path")
    elif not folder.is_dir():
        checker.fail(path, f"{folder} is not a folder")
    elif not os.access(folder, os.R_OK | os.X_OK):
        checker.fail(path, f"cannot read folder {folder} as this user; grant read access")


def _check_creatable_folder(folder: Any, path: str, checker: SchemaChecker) -> None:
    """Record a problem unless `folder` is a writable folder, or can be created in an existing parent."""
    if folder in (None, INVALID):
        return
    if folder.exists():
        if not folder.is_dir():
            checker.fail(path, f"{folder} is not a folder")
        elif not os.access(folder, os.W_OK | os.X_OK):
            checker.fail(path, f"cannot write to folder {folder} as this user; grant write access")
    elif not folder.parent.is_dir():
        checker.fail(path, f"neither {folder} nor its parent folder exists; create {folder.parent} "
                           "(the last folder is created on start)")
    elif not os.access(folder.parent, os.W_OK | os.X_OK):
        checker.fail(path, f"{folder} does not exist and this user cannot create it in {folder.parent}")


def _check_names_unique(watches: list[tuple[int, dict]], checker: SchemaChecker) -> None:
    first: dict[str, int] = {}
    for i, watch in watches:
        name = watch["name"]
        if name is INVALID:
            continue
        if name in first:
            checker.fail(f"watches[{i}].name", f"'{name}' is already the name of watches[{first[name]}]; "
                                               "each watch needs its own name (the ledger is keyed by it)")
        first.setdefault(name, i)


def _check_inputs_apart(watches: list[tuple[int, dict]], checker: SchemaChecker) -> None:
    """Record inputs that overlap another watch's input, and outputs inside another watch's input."""
    for (i, a), (j, b) in combinations(watches, 2):
        if a["input"] is INVALID or b["input"] is INVALID:
            continue
        if _inside(a["input"], b["input"]) or _inside(b["input"], a["input"]):
            checker.fail(f"watches[{j}].input", f"{b['input']} overlaps the input of watches[{i}] "
                                                f"({a['input']}); a photo there would be sent by both "
                                                "watches: give each watch its own folder")
        for (k, x), (m, y) in (((i, a), (j, b)), ((j, b), (i, a))):
            if y["output"] is not INVALID and _inside(y["output"], x["input"]):
                checker.fail(f"watches[{m}].output", f"{y['output']} is inside the input of watches[{k}] "
                                                     f"({x['input']}); its retouched photos would be sent "
                                                     "again: choose an output outside every input")


def _inside(inner: Path, outer: Path) -> bool:
    """Tell whether `inner` is `outer` or below it, after following symlinks."""
    inner, outer = inner.resolve(), outer.resolve()
    return inner == outer or outer in inner.parents


# --- profiles ----------------------------------------------------------------

def resolve_profiles(config: Config, profiles: list[dict]) -> dict[str, int]:
    """Given the profiles Studio returned (dicts with `id` and `name`), return each watch's profile id.

    Raise ConfigError listing every watch whose profile id is unknown, or
    whose profile name matches no profile or several.
    """
    ids = {int(p["id"]): str(p.get("name", "")) for p in profiles}
    resolved: dict[str, int] = {}
    problems: list[str] = []
    for i, watch in enumerate(config.watches):
        found = _find_profile(watch.profile, ids)
        if isinstance(found, int):
            resolved[watch.name] = found
        else:
            problems.append(f"At 'watches[{i}].profile': {found}")
    if problems:
        raise ConfigError(problems, str(config.source) if config.source else "config")
    return resolved


def _find_profile(profile: int | str, ids: dict[int, str]) -> int | str:
    """Return the matching profile id, or a message saying why there is none."""
    if isinstance(profile, int):
        if profile in ids:
            return profile
        known = ", ".join(f"{i} {name!r}" for i, name in sorted(ids.items())) or "none"
        return f"no Studio profile with id {profile} (known: {known})"
    matches = sorted(i for i, name in ids.items() if name == profile)
    if len(matches) == 1:
        return matches[0]
    if matches:
        listed = ", ".join(str(i) for i in matches)
        return f"{len(matches)} Studio profiles are named '{profile}' (ids {listed}); use the id instead"
    known = ", ".join(sorted(set(ids.values()))) or "none"
    return f"no Studio profile named '{profile}' (known: {known})"
