"""Tests of skylab_watch.config: loading, every validation rule, secrets, profiles, the example file."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from pathlib import Path

import pytest
import yaml

from skylab_watch.cli import main
from skylab_watch.config import (
    Config, load_config, parse_config, resolve_profiles,
)
from skylab_watch.config.render import format_value, render_example
from skylab_watch.config.schema import REQUIRED, SCHEMA, Option
from skylab_watch.errors import ConfigError, Problem

KEY = "sk-test-0123456789abcdef"
REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.yaml"


# --- helpers -----------------------------------------------------------------

@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A folder holding in/ and out/, where config files are written."""
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path


def config_data(**watch: object) -> dict:
    """Return a minimal valid config document (paths relative to the config file)."""
    return {
        "studio": {"api_key": KEY},
        "ledger": "ledger.sqlite3",
        "watches": [{"name": "packshots", "input": "in", "output": "out", "profile": 123, **watch}],
    }


def write(folder: Path, data: object, name: str = "config.yaml") -> Path:
    """Write `data` (a document, or YAML text) to a file in `folder`; return its path."""
    path = folder / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    path.chmod(0o600)  # as a config holding a key should be (others reading it gets a warning)
    return path


def problems_of(folder: Path, data: object, env: dict | None = None) -> list[str]:
    """Load `data` from a file and return the problems of the ConfigError it must raise."""
    with pytest.raises(ConfigError) as info:
        load_config(write(folder, data), env=env or {})
    return [str(problem) for problem in info.value.problems]


def set_key(data: dict, path: str, value: object) -> dict:
    """Set a dotted key path such as 'watches[0].batch.max_photos' in a copy of `data`."""
    data = copy.deepcopy(data)
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node = data
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    node[parts[-1]] = value
    return data


def del_key(data: dict, path: str) -> dict:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node["watches"][0] if part == "watches[0]" else node[part]
    del node[last]
    return data


# --- loading -------------------------------------------------------------------

def test_minimal_config_fills_every_default(base: Path) -> None:
    config = load_config(write(base, config_data()), env={})
    watch = config.watch("packshots")
    assert config.source == base / "config.yaml"
    assert config.studio.api_url == "https://studio.skylabtech.ai"
    assert (config.studio.connect_timeout, config.studio.read_timeout) == (10.0, 60.0)
    assert dataclasses.astuple(config.studio.retry) == (6, 120.0, 1.0, 30.0)
    assert (config.upload_concurrency, config.download_concurrency) == (4, 4)
    assert (config.poll_interval_seconds, config.credits_retry_seconds) == (15.0, 300.0)
    assert (config.callback, config.log_level, config.log_format) == (None, "info", "text")
    assert dataclasses.astuple(watch.batch) == (100, 30.0, 600.0)
    assert (watch.recursive, watch.observer, watch.settle_seconds, watch.after_success) == (True, "native", 3.0, "keep")
    assert watch.include == () and watch.exclude == (".*", "*~", "*.part", "*.tmp", "*.crdownload")
    assert (watch.resize_oversized, watch.skip_duplicate_content) == (False, True)
    assert (watch.rescan_seconds, watch.poll_interval_seconds, watch.delivery_timeout_seconds) == (300.0, 10.0, 86400.0)
    assert watch.archive_dir is None
    assert (config.retry.give_up_after_hours, watch.unreadable_grace_seconds) == (24.0, 60.0)


def test_the_documented_yaml_contract_loads(base: Path) -> None:
    (base / "archive").mkdir()
    text = f"""
studio:
  api_url: https://studio.skylabtech.ai/
  api_key: "{KEY}"
ledger: {base}/ledger.sqlite3
watches:
  - name: packshots
    input: {base}/in
    output: {base}/out
    profile: 123
    recursive: true
    observer: polling
    settle_seconds: 3
    batch:
      max_photos: 100
      quiet_seconds: 30
      max_wait_seconds: 600
    after_success: archive
    archive_dir: {base}/archive
uploads:
  concurrency: 2
polling:
  interval_seconds: 20
"""
    config = load_config(write(base, text), env={})
    watch = config.watches[0]
    assert config.studio.api_url == "https://studio.skylabtech.ai"
    assert (watch.observer, watch.after_success, watch.archive_dir) == ("polling", "archive", base / "archive")
    assert (config.upload_concurrency, config.poll_interval_seconds) == (2, 20.0)


def test_relative_paths_resolve_against_the_config_folder_not_cwd(base: Path, tmp_path_factory, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_config(write(base, config_data()), env={})
    assert config.watches[0].input == base / "in"
    assert config.watches[0].output == base / "out"
    assert config.ledger == base / "ledger.sqlite3"


def test_tilde_is_expanded(base: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(base))
    config = load_config(write(base, config_data(input="~/in")), env={})
    assert config.watches[0].input == base / "in"


def test_config_objects_are_frozen(base: Path) -> None:
    config = load_config(write(base, config_data()), env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.watches[0].name = "other"  # type: ignore[misc]


def test_watch_lookup_by_unknown_name_raises_key_error_listing_names(base: Path) -> None:
    config = load_config(write(base, config_data()), env={})
    with pytest.raises(KeyError, match="packshots"):
        config.watch("nope")


def test_missing_file_is_a_config_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml", env={})
    assert info.value.source == str(tmp_path / "absent.yaml")
    assert "cannot read the configuration file: No such file or directory" in str(info.value.problems[0])


def test_yaml_syntax_error_gives_line_and_column(base: Path) -> None:
    problems = problems_of(base, "studio:\n  api_key: x\nwatches: [\n  - name: a\n")
    assert len(problems) == 1
    assert re.search(r"cannot parse the YAML at line \d+, column \d+", problems[0])


def test_a_key_given_twice_is_reported_with_its_line(base: Path) -> None:
    problems = problems_of(base, "ledger: a.sqlite3\nledger: b.sqlite3\nwatches: []\n")
    assert problems == ["cannot parse the YAML at line 2, column 1: "
                        "key 'ledger' appears twice in the same mapping; keep one"]


def test_empty_file_asks_for_watches(base: Path) -> None:
    assert "At 'watches': is required" in problems_of(base, "", env={"SKYLAB_API_KEY": KEY})[0]


def test_top_level_must_be_a_mapping(base: Path) -> None:
    assert problems_of(base, "- a\n- b\n") == ["At the top level: must be a mapping of keys to values, got a list"]


# --- one rule at a time: exactly one problem, naming the key path ----------------

RULES = [
    ("watches[0].batch.max_photos", 0, "must be at least 1"),
    ("watches[0].batch.max_photos", 5000, "must be at most 1000 (big jobs delay"),
    ("watches[0].batch.max_photos", 2.5, "must be a whole number"),
    ("watches[0].batch.quiet_seconds", 0, "must be more than 0 seconds"),
    ("watches[0].batch.max_wait_seconds", -5, "must be more than 0 seconds"),
    ("watches[0].settle_seconds", "3", "must be a number of seconds, got '3' (a string)"),
    ("watches[0].rescan_seconds", 0, "must be more than 0 seconds"),
    ("watches[0].poll_interval_seconds", True, "must be a number of seconds"),
    ("watches[0].delivery_timeout_seconds", 0, "must be more than 0 seconds"),
    ("watches[0].recursive", "maybe", "must be true or false"),
    ("watches[0].resize_oversized", 1, "must be true or false"),
    ("watches[0].skip_duplicate_content", "no way", "must be true or false"),
    ("watches[0].observer", "inotify", "must be one of native, polling"),
    ("watches[0].after_success", "archvie",
     "must be one of keep, archive, delete, got 'archvie' (a string); did you mean 'archive'?"),
    ("watches[0].profile", 0, "must be a profile id (a whole number of at least 1) or a profile name"),
    ("watches[0].profile", "  ", "must be a profile id"),
    ("watches[0].profile", 1.5, "must be a profile id"),
    ("watches[0].name", "my watch", "must use only letters, digits, '-' and '_'"),
    ("watches[0].name", "a/b", "must use only letters, digits, '-' and '_'"),
    ("watches[0].include", "*.jpg", "must be a list of glob patterns"),
    ("watches[0].exclude", [".*", 3], "must be a list of glob patterns"),
    ("watches[0].recursve", True, "unknown key; did you mean 'recursive'?"),
    ("watches[0].batch.max_foto", 3, "unknown key; did you mean 'max_photos'?"),
    ("studio.api_url", "ftp://studio", "must be an http:// or https:// URL"),
    ("studio.connect_timeout", 0, "must be more than 0 seconds"),
    ("studio.read_timeout", "60s", "must be a number of seconds"),
    ("studio.retry.max_attempts", 0, "must be at least 1"),
    ("studio.retry.max_seconds", 0, "must be more than 0 seconds"),
    ("studio.retry.initial_seconds", -1, "must be more than 0 seconds"),
    ("studio.retry.max_backoff_seconds", 0, "must be more than 0 seconds"),
    ("studio.api_kee", "x", "unknown key; did you mean 'api_key'?"),
    ("uploads.concurrency", 0, "must be at least 1"),
    ("downloads.concurrency", "four", "must be a whole number"),
    ("polling.interval_seconds", 0, "must be more than 0 seconds"),
    ("credits.retry_seconds", -1, "must be more than 0 seconds"),
    ("retry.give_up_after_hours", 0, "must be more than 0 hours"),
    ("retry.give_up_after_hours", "a day", "must be a number of hours"),
    ("logging.level", "verbose", "must be one of debug, info, warning, error"),
    ("logging.format", "xml", "must be one of text, json"),
    ("ledger", 5, "must be a path"),
    ("uploads", 4, "must be a mapping of keys to values, got 4 (a number)"),
    ("zzz_unrelated", 1, "unknown key; the keys allowed here are studio, ledger, watches"),
]


@pytest.mark.parametrize(("path", "value", "message"), RULES, ids=[f"{p}={v!r}" for p, v, _ in RULES])
def test_each_bad_value_is_reported_at_its_key_path(base: Path, path: str, value: object, message: str) -> None:
    problems = problems_of(base, set_key(config_data(), path, value))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"At '{path}': {message}"), problems[0]


@pytest.mark.parametrize("key", ["watches[0].name", "watches[0].input", "watches[0].output", "watches[0].profile"])
def test_each_required_watch_key_is_reported_when_missing(base: Path, key: str) -> None:
    problems = problems_of(base, del_key(config_data(), key))
    assert len(problems) == 1 and problems[0].startswith(f"At '{key}': is required"), problems


def test_watches_must_be_given_and_not_empty(base: Path) -> None:
    assert problems_of(base, del_key(config_data(), "watches"))[0].startswith("At 'watches': is required")
    assert problems_of(base, set_key(config_data(), "watches", []))[0].startswith(
        "At 'watches': must be a list with at least one entry")


def test_every_problem_is_reported_at_once(base: Path) -> None:
    data = config_data(observer="inotify", profile=-1, batch={"max_photos": 0})
    data["studio"] = {"api_url": "nope"}
    data["uploads"] = {"concurrency": 0}
    data["watches"].append({"name": "packshots", "input": "missing", "output": "x/y"})
    problems = problems_of(base, data)
    for expected in ("At 'studio.api_url'", "At 'studio.api_key': no API key", "At 'watches[0].observer'",
                     "At 'watches[0].profile'", "At 'watches[0].batch.max_photos'", "At 'uploads.concurrency'",
                     "At 'watches[1].profile': is required", "At 'watches[1].input': folder",
                     "At 'watches[1].output': neither", "At 'watches[1].name': 'packshots' is already"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_config_error_text_prefixes_each_problem_with_the_file(base: Path) -> None:
    path = write(base, set_key(config_data(), "uploads.concurrency", 0))
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == f"{path}: At 'uploads.concurrency': must be at least 1, got 0"


# --- folders ---------------------------------------------------------------------

def test_problems_are_data_and_render_as_the_documented_text() -> None:
    error = ConfigError([Problem("watches[1].batch.max_photos", "must be at least 1"),
                         Problem("watches[0].input", "folder /x does not exist", "create it or correct the path"),
                         Problem("", "must be a mapping of keys to values, got a list"),
                         Problem(None, "cannot parse the YAML at line 2, column 1: oops")], "config.yaml")
    assert str(error).splitlines() == [
        "config.yaml: At 'watches[1].batch.max_photos': must be at least 1",
        "config.yaml: At 'watches[0].input': folder /x does not exist; create it or correct the path",
        "config.yaml: At the top level: must be a mapping of keys to values, got a list",
        "config.yaml: cannot parse the YAML at line 2, column 1: oops"]
    assert error.report().endswith("config.yaml: 4 problems found")


def test_every_key_is_a_field_of_its_config_class_with_the_schema_default(base: Path) -> None:
    config = load_config(write(base, config_data()), env={})
    for option in SCHEMA:
        value = getattr(config, option.name)
        if option.name == "studio":  # holds the key, which has no default
            assert value.retry == option.record().retry
        elif option.kind == "section" and option.default == {}:
            assert value == option.record(), option.name
        elif option.default not in (REQUIRED, None) and option.kind != "path":
            assert value == option.default, option.name


def test_an_output_whose_parent_is_a_file_says_so(base: Path) -> None:
    (base / "blocker").write_text("x")
    assert problems_of(base, config_data(output="blocker/out")) == [
        f"At 'watches[0].output': {base / 'blocker/out'} cannot be created: {base / 'blocker'} is a file, "
        "not a folder; move that file aside or correct the path"]


def test_duplicate_watch_names_are_rejected(base: Path) -> None:
    (base / "in2").mkdir()
    data = config_data()
    data["watches"].append({"name": "packshots", "input": "in2", "output": "out2", "profile": 1})
    assert problems_of(base, data) == [
        "At 'watches[1].name': 'packshots' is already the name of watches[0]; each watch needs its own name "
        "(the ledger is keyed by it)"]


def test_input_folder_must_exist(base: Path) -> None:
    problems = problems_of(base, config_data(input="nowhere"))
    assert problems == [f"At 'watches[0].input': folder {base / 'nowhere'} does not exist; "
                        "create it or correct the path"]


def test_input_must_be_a_folder(base: Path) -> None:
    (base / "file.jpg").write_bytes(b"x")
    expected = f"At 'watches[0].input': {base / 'file.jpg'} is not a folder"
    assert problems_of(base, config_data(input="file.jpg")) == [expected]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any folder")
def test_input_must_be_readable(base: Path) -> None:
    (base / "in").chmod(0o000)
    try:
        problems = problems_of(base, config_data())
    finally:
        (base / "in").chmod(0o755)
    assert problems[0].startswith("At 'watches[0].input': cannot read folder")


def test_input_without_read_permission_is_rejected_even_for_root(base: Path, monkeypatch) -> None:
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != base / "in" and real_access(path, mode))
    problems = problems_of(base, config_data())
    assert problems == [f"At 'watches[0].input': cannot read folder {base / 'in'} as this user; grant read access"]


def test_output_without_write_permission_is_rejected(base: Path, monkeypatch) -> None:
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != base / "out" and real_access(path, mode))
    problems = problems_of(base, config_data())
    assert problems == [f"At 'watches[0].output': cannot write to folder {base / 'out'} as this user; "
                        "grant write access"]


def test_missing_output_is_fine_when_its_parent_exists(base: Path) -> None:
    config = load_config(write(base, config_data(output="out/new")), env={})
    assert config.watches[0].output == base / "out" / "new"


def test_missing_output_without_parent_is_rejected(base: Path) -> None:
    problems = problems_of(base, config_data(output="a/b/c"))
    assert problems == [f"At 'watches[0].output': neither {base / 'a/b/c'} nor its parent folder exists; "
                        f"create {base / 'a/b'} (the last folder is created on start)"]


def test_output_that_is_a_file_is_rejected(base: Path) -> None:
    (base / "out.txt").write_text("x")
    expected = f"At 'watches[0].output': {base / 'out.txt'} is not a folder"
    assert problems_of(base, config_data(output="out.txt")) == [expected]


def test_output_inside_its_own_input_is_rejected(base: Path) -> None:
    problems = problems_of(base, config_data(output="in/done"))
    assert len(problems) == 1 and problems[0].startswith("At 'watches[0].output':")
    assert "is inside the input folder" in problems[0]


def test_output_equal_to_input_is_rejected_once(base: Path) -> None:
    problems = problems_of(base, config_data(output="in"))
    assert len(problems) == 1 and "At 'watches[0].output'" in problems[0]


def test_input_inside_its_own_output_is_rejected(base: Path) -> None:
    (base / "out" / "incoming").mkdir()
    problems = problems_of(base, config_data(input="out/incoming"))
    assert len(problems) == 1 and problems[0].startswith("At 'watches[0].input':")
    assert "is inside the output folder" in problems[0]


@pytest.mark.parametrize("second_input", ["in/sub", "in"])
def test_overlapping_inputs_of_two_watches_are_rejected(base: Path, second_input: str) -> None:
    (base / "in" / "sub").mkdir()
    data = config_data()
    data["watches"].append({"name": "other", "input": second_input, "output": "out2", "profile": 1})
    problems = problems_of(base, data)
    assert len(problems) == 1 and problems[0].startswith("At 'watches[1].input':")
    assert "overlaps the input of watches[0]" in problems[0]


def test_output_inside_another_watchs_input_is_rejected(base: Path) -> None:
    (base / "in2").mkdir()
    data = config_data()
    data["watches"].append({"name": "other", "input": "in2", "output": "in/retouched", "profile": 1})
    problems = problems_of(base, data)
    assert len(problems) == 1 and problems[0].startswith("At 'watches[1].output':")
    assert "is inside the input of watches[0]" in problems[0]


def test_archive_requires_archive_dir(base: Path) -> None:
    assert problems_of(base, config_data(after_success="archive")) == [
        "At 'watches[0].archive_dir': is required when after_success is archive: the folder originals are moved to"]


def test_archive_dir_inside_the_input_is_rejected(base: Path) -> None:
    problems = problems_of(base, config_data(after_success="archive", archive_dir="in/archive"))
    assert len(problems) == 1 and problems[0].startswith("At 'watches[0].archive_dir':")
    assert "is inside the input folder" in problems[0]


def test_archive_dir_outside_the_input_is_accepted(base: Path) -> None:
    config = load_config(write(base, config_data(after_success="archive", archive_dir="archive")), env={})
    assert config.watches[0].archive_dir == base / "archive"


def test_check_paths_false_skips_disk_checks_but_not_layout(tmp_path: Path) -> None:
    data = config_data(input="/nowhere/in", output="/nowhere/out")
    config = parse_config(data, base_dir=tmp_path, env={}, check_paths=False)
    assert config.watches[0].input == Path("/nowhere/in")
    with pytest.raises(ConfigError) as info:
        parse_config(config_data(input="/nowhere/in", output="/nowhere/in/out"), env={}, check_paths=False)
    assert info.value.problems[0].path == "watches[0].output"


# --- the API key and other secrets -------------------------------------------------

def key_file(folder: Path, name: str, content: str) -> Path:
    path = folder / name
    path.write_text(content)
    return path


def studio_key(folder: Path, studio: dict, env: dict) -> str:
    data = config_data()
    data["studio"] = studio
    return load_config(write(folder, data), env=env).studio.api_key


def test_api_key_inline_wins_over_every_other_source(base: Path) -> None:
    creds = base / "creds"
    creds.mkdir()
    key_file(creds, "api_key", "from-creds")
    key_file(base, "key.txt", "from-file")
    env = {"SKYLAB_API_KEY": "from-env", "CREDENTIALS_DIRECTORY": str(creds)}
    assert studio_key(base, {"api_key": "inline-key", "api_key_file": "key.txt"}, env) == "inline-key"
    assert studio_key(base, {"api_key_file": "key.txt"}, env) == "from-file"
    assert studio_key(base, {}, env) == "from-env"
    assert studio_key(base, {}, {"CREDENTIALS_DIRECTORY": str(creds)}) == "from-creds"


def test_api_key_file_content_is_stripped_and_relative_to_the_config(base: Path) -> None:
    key_file(base, "key.txt", f"  {KEY}\n\n")
    assert studio_key(base, {"api_key_file": "key.txt"}, {}) == KEY


def test_no_api_key_anywhere_is_reported_with_the_fix(base: Path) -> None:
    data = config_data()
    del data["studio"]
    assert problems_of(base, data, env={"SKYLAB_API_KEY": "  ", "CREDENTIALS_DIRECTORY": str(base)}) == [
        "At 'studio.api_key': no API key: set studio.api_key, studio.api_key_file "
        "or the SKYLAB_API_KEY environment variable"]


def test_unreadable_api_key_file_names_the_key_and_the_os_reason(base: Path) -> None:
    data = set_key(config_data(), "studio", {"api_key_file": "missing.txt"})
    problems = problems_of(base, data, env={"SKYLAB_API_KEY": "ignored"})
    assert problems == [f"At 'studio.api_key_file': cannot read {base / 'missing.txt'}: No such file or directory; "
                        "check the path and that this user may read the file"]


def test_empty_api_key_file_is_rejected(base: Path) -> None:
    key_file(base, "key.txt", "\n")
    problems = problems_of(base, set_key(config_data(), "studio", {"api_key_file": "key.txt"}))
    assert problems == [f"At 'studio.api_key_file': {base / 'key.txt'} is empty; put the API key in it"]


def test_a_wrongly_typed_api_key_is_not_echoed(base: Path) -> None:
    problems = problems_of(base, set_key(config_data(), "studio.api_key", 987654321))
    assert problems == ["At 'studio.api_key': must be a non-empty string, got a number"]


def test_secrets_never_appear_in_repr_or_str(base: Path) -> None:
    key_file(base, "secret.txt", "cb-secret-xyz-0123456789\n")
    data = config_data()
    data["callback"] = {"public_url": "https://watch.example.com/cb", "secret_file": "secret.txt"}
    config = load_config(write(base, data), env={})
    assert config.studio.api_key == KEY and config.callback.secret == "cb-secret-xyz-0123456789"
    for text in (repr(config), str(config), repr(config.studio), repr(config.callback)):
        assert KEY not in text and "cb-secret-xyz-0123456789" not in text


# --- ledger and callback -------------------------------------------------------------

def test_ledger_defaults_to_var_lib(base: Path) -> None:
    data = config_data()
    del data["ledger"]
    assert load_config(write(base, data), env={}).ledger == Path("/var/lib/skylab-watch/ledger.sqlite3")


def test_ledger_defaults_to_state_directory_under_systemd(base: Path) -> None:
    data = config_data()
    del data["ledger"]
    config = load_config(write(base, data), env={"STATE_DIRECTORY": "/var/lib/sw:/var/lib/other"})
    assert config.ledger == Path("/var/lib/sw/ledger.sqlite3")


def test_an_explicit_ledger_wins_over_state_directory(base: Path) -> None:
    config = load_config(write(base, config_data()), env={"STATE_DIRECTORY": "/var/lib/sw"})
    assert config.ledger == base / "ledger.sqlite3"


def test_callback_parses_listen_address_and_inline_secret(base: Path) -> None:
    data = config_data()
    data["callback"] = {"listen": "0.0.0.0:9000", "public_url": "https://w.example.com/cb/",
                        "secret": "s3-long-enough-secret"}
    callback = load_config(write(base, data), env={}).callback
    assert (callback.host, callback.port, callback.public_url, callback.secret, callback.path) == (
        "0.0.0.0", 9000, "https://w.example.com/cb", "s3-long-enough-secret", "/cb")


def test_a_callback_secret_shorter_than_16_bytes_is_refused_without_echoing_it(base: Path) -> None:
    data = config_data()
    data["callback"] = {"public_url": "https://w.example.com/cb", "secret": "fifteen-bytes!!"}
    problems = problems_of(base, data)
    assert len(problems) == 1 and problems[0].startswith("At 'callback.secret': the secret is 15 byte(s) long; "
                                                         "it must be at least 16 bytes")
    assert "fifteen-bytes" not in problems[0] and "openssl rand" in problems[0]


def test_a_short_callback_secret_in_its_file_is_refused_and_16_bytes_pass(base: Path) -> None:
    key_file(base, "short.txt", "x\n")
    data = config_data()
    data["callback"] = {"public_url": "https://w.example.com/cb", "secret_file": "short.txt"}
    assert [p.split(":")[0] for p in problems_of(base, data)] == ["At 'callback.secret_file'"]
    (base / "short.txt").write_text("é" * 8 + "\n", encoding="utf-8")  # 8 characters, 16 bytes in UTF-8
    assert load_config(write(base, data), env={}).callback.secret == "é" * 8


def test_callback_defaults_listen_to_localhost(base: Path) -> None:
    data = config_data()
    data["callback"] = {"public_url": "https://w.example.com/cb", "secret": "s3-long-enough-secret"}
    callback = load_config(write(base, data), env={}).callback
    assert (callback.host, callback.port) == ("127.0.0.1", 8790)


def test_callback_requires_public_url_and_a_secret(base: Path) -> None:
    data = config_data()
    data["callback"] = {"listen": "localhost"}
    problems = problems_of(base, data)
    assert [p.split(":")[0] for p in problems] == [
        "At 'callback.listen'", "At 'callback.public_url'", "At 'callback.secret_file'"]
    assert "is required when callback is set" in problems[2]


# --- profiles --------------------------------------------------------------------------

PROFILES = [{"id": 123, "name": "Packshots"}, {"id": 7, "name": "Jewelry"},
            {"id": 8, "name": "Twin"}, {"id": 9, "name": "Twin"}]


def two_watch_config(tmp_path: Path, first: object, second: object) -> Config:
    data = config_data(profile=first)
    data["watches"].append({"name": "second", "input": "/b/in", "output": "/b/out", "profile": second})
    data["watches"][0].update(input="/a/in", output="/a/out")
    return parse_config(data, base_dir=tmp_path, env={}, check_paths=False)


def test_resolve_profiles_by_id_and_by_name(tmp_path: Path) -> None:
    config = two_watch_config(tmp_path, 123, "Jewelry")
    assert resolve_profiles(config, PROFILES) == {"packshots": 123, "second": 7}


def test_resolve_profiles_reports_unknown_names_and_ids(tmp_path: Path) -> None:
    config = two_watch_config(tmp_path, 555, "Foo")
    with pytest.raises(ConfigError) as info:
        resolve_profiles(config, [{"id": 1, "name": "B"}, {"id": 2, "name": "A"}])
    assert info.value.problems == [
        Problem("watches[0].profile", "no Studio profile with id 555 (known: 1 'B', 2 'A')"),
        Problem("watches[1].profile", "no Studio profile named 'Foo' (known: A, B)")]


def test_resolve_profiles_rejects_an_ambiguous_name(tmp_path: Path) -> None:
    config = two_watch_config(tmp_path, 123, "Twin")
    with pytest.raises(ConfigError) as info:
        resolve_profiles(config, PROFILES)
    assert [str(p) for p in info.value.problems] == [
        "At 'watches[1].profile': 2 Studio profiles are named 'Twin' (ids 8, 9); use the id instead"]


# --- config.example.yaml ------------------------------------------------------------------

def uncomment(text: str) -> str:
    """Turn every commented-out key in the example into a real one."""
    pattern = re.compile(r"^(\s*)# (?=\s*(?:# )?(?:- )?[a-z_]+:(?:\s|$))", re.MULTILINE)
    while True:
        text, count = pattern.subn(r"\1", text)
        if not count:
            return text


def schema_paths(options: tuple[Option, ...], prefix: tuple = ()) -> list[tuple]:
    paths = []
    for option in options:
        path = (*prefix, option.name)
        paths.append(path)
        if option.kind == "list":
            paths += schema_paths(option.children, (*path, 0))
        elif option.kind == "section":
            paths += schema_paths(option.children, path)
    return paths


def in_tmp(text: str, tmp_path: Path) -> str:
    """Move the example's absolute paths into tmp_path and create the folders and files they need."""
    for folder in ("srv/studio/in/packshots", "srv/studio/out", "srv/studio/archive", "etc/skylab-watch"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
    (tmp_path / "etc/skylab-watch/api_key").write_text("key-from-file\n")
    (tmp_path / "etc/skylab-watch/callback_secret").write_text("secret-from-file\n")
    for prefix in ("/srv/studio", "/etc/skylab-watch", "/var/lib/skylab-watch"):
        text = text.replace(prefix, f"{tmp_path}{prefix}")
    return text


def test_example_file_is_generated_from_the_schema() -> None:
    assert EXAMPLE.read_text() == render_example(), "regenerate: python -m skylab_watch.config > config.example.yaml"


def test_example_file_lists_every_schema_key() -> None:
    document = yaml.safe_load(uncomment(EXAMPLE.read_text()))
    missing = []
    for path in schema_paths(SCHEMA):
        node = document
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                missing.append(path)
                break
    assert missing == []


def all_options(options: tuple[Option, ...]) -> list[Option]:
    return [o for option in options for o in (option, *all_options(option.children))]


def test_example_file_describes_every_key_with_its_default() -> None:
    lines = [line.lstrip("# ") for line in EXAMPLE.read_text().splitlines()]
    for option in all_options(SCHEMA):
        if option.kind in ("section", "list") or option.default in (None, REQUIRED):
            continue
        comment = f"{option.description} Default: {format_value(option.default)}."
        index = lines.index(comment)
        assert lines[index + 1] == f"{option.name}: {format_value(option.default)}"


def test_example_file_parses_as_is(tmp_path: Path) -> None:
    text = in_tmp(EXAMPLE.read_text(), tmp_path)
    config = parse_config(yaml.safe_load(text), "example", tmp_path, env={"SKYLAB_API_KEY": "key-from-env"})
    assert [w.name for w in config.watches] == ["packshots"] and config.callback is None
    structural = parse_config(yaml.safe_load(EXAMPLE.read_text()), env={"SKYLAB_API_KEY": "key-from-env"},
                              check_paths=False)
    assert structural.watches[0].input == Path("/srv/studio/in/packshots")


def test_example_file_parses_with_every_optional_key_enabled(tmp_path: Path) -> None:
    text = in_tmp(uncomment(EXAMPLE.read_text()), tmp_path)
    token = tmp_path / "etc/skylab-watch/http_token"  # http has no inline token: its file must exist
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("an-http-token-0123456789\n")
    config = parse_config(yaml.safe_load(text), "example", tmp_path, env={})
    assert config.studio.api_key == "your-studio-api-key"
    assert config.http is not None and config.http.token == "an-http-token-0123456789"
    assert config.callback is not None and config.callback.secret == "a-long-random-string"
    assert config.watches[0].archive_dir == tmp_path / "srv/studio/archive/packshots"


# --- skylab-watch check-config -------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch) -> None:
    for name in ("SKYLAB_API_KEY", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


def test_check_config_prints_a_summary_and_exits_0(base: Path, capsys, clean_env) -> None:
    data = config_data()
    data["callback"] = {"public_url": "https://w.example.com/cb", "secret": "cb-secret-xyz-0123456789"}
    assert main(["check-config", "--config", str(write(base, data))]) == 0
    out, err = capsys.readouterr()
    assert f"watch packshots: {base / 'in'} → {base / 'out'} (profile 123, native observer" in out
    assert out.rstrip().endswith("configuration OK") and err == ""
    assert KEY not in out and "cb-secret-xyz-0123456789" not in out


def test_check_config_prints_every_problem_and_exits_1(base: Path, capsys, clean_env, monkeypatch) -> None:
    monkeypatch.chdir(base)
    data = set_key(config_data(observer="inotify"), "uploads.concurrency", 0)
    write(base, data)
    assert main(["check-config", "--config", "config.yaml"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "config.yaml: At 'watches[0].observer': must be one of native, polling" in err
    assert "config.yaml: At 'uploads.concurrency': must be at least 1" in err
    assert "config.yaml: 2 problems found" in err
    assert KEY not in err


def test_check_config_requires_the_config_option(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check-config"])
    assert info.value.code == 2
    assert "--config" in capsys.readouterr().err
