"""The notify: section of the configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skylab_watch.config import parse_config
from skylab_watch.errors import ConfigError


def _doc(tmp: Path, notify: object) -> dict:
    (tmp / "in").mkdir(exist_ok=True)
    return {"studio": {"api_key": "test-key-123"}, "ledger": str(tmp / "l.sqlite3"), "notify": notify,
            "watches": [{"name": "w", "input": str(tmp / "in"), "output": str(tmp / "out"), "profile": 1}]}


def test_urls_may_take_every_event_or_only_their_own(tmp_path: Path) -> None:
    config = parse_config(_doc(tmp_path, {"urls": ["json://127.0.0.1:9/a", {"url": "json://127.0.0.1:9/b",
                                                                          "events": ["credits", "failed"]}]}))
    assert config.notify is not None
    first, second = config.notify.targets
    assert first.events is None and second.events == ("credits", "failed")
    assert "127.0.0.1" not in repr(config.notify), "a URL may hold a token: it stays out of reprs and logs"


def test_every_notify_problem_is_named_by_its_key_without_echoing_the_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_doc(tmp_path, {"urls": ["not a url secret-token", {"url": "json://h/x", "events": ["fail"]}],
                                     "events": ["credit"], "ping_url": "ftp://x"}))
    text = str(caught.value)
    assert "At 'notify.urls[0]': must be an apprise URL" in text and "secret-token" not in text
    assert "At 'notify.urls[1].events': 'fail' is not an event" in text and "did you mean 'failed'" in text
    assert "At 'notify.events': 'credit' is not an event" in text
    assert "At 'notify.ping_url': must be an http:// or https:// URL" in text


def test_urls_without_apprise_installed_are_a_clear_config_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # what Python does when the package is absent
    with pytest.raises(ConfigError) as caught:
        parse_config(_doc(tmp_path, {"urls": ["json://127.0.0.1:9/a"]}))
    assert "At 'notify.urls': needs apprise" in str(caught.value) and "skylab-watch[notify]" in str(caught.value)
    assert parse_config(_doc(tmp_path, {"ping_url": "http://127.0.0.1:9/p"})).notify is not None, \
        "pings alone need no apprise"


def test_a_url_apprise_does_not_understand_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_doc(tmp_path, {"urls": ["nosuchservice://token@host"]}))
    assert "At 'notify.urls[0]': apprise does not understand this URL" in str(caught.value)
    assert "token" not in str(caught.value).split("(the URL")[0]


def _with_report(tmp: Path, notify: object, report: object) -> dict:
    return {**_doc(tmp, notify), "report": report}


def test_report_at_is_a_quoted_local_time_and_an_unquoted_7_00_says_to_quote_it(tmp_path: Path) -> None:
    import yaml

    config = parse_config(_with_report(tmp_path, {"urls": ["json://127.0.0.1:9/a"]}, {"at": "7:05"}))
    assert config.report is not None and config.report.at == "07:05"
    assert (config.report.since_hours, config.report.late_hours) == (24, 5)
    unquoted = yaml.safe_load("at: 7:00")["at"]  # YAML 1.1 reads it as 420 (base 60)
    with pytest.raises(ConfigError) as caught:
        parse_config(_with_report(tmp_path, {"urls": ["json://127.0.0.1:9/a"]}, {"at": unquoted}))
    assert "At 'report.at': must be a time such as \"07:00\", got the number 420" in str(caught.value)
    assert 'put the time in quotes: "07:00"' in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        parse_config(_with_report(tmp_path, {"urls": ["json://127.0.0.1:9/a"]}, {"at": "24:00", "late_hours": 30}))
    assert "At 'report.at': must be a local time HH:MM" in str(caught.value)
    assert "At 'report.late_hours': must be at most 23" in str(caught.value)


def test_a_report_that_no_notifier_takes_is_a_config_error_naming_the_fix(tmp_path: Path) -> None:
    for notify in (None, {"urls": [{"url": "json://127.0.0.1:9/a", "events": ["failed"]}],
                          "events": ["failed"]}):
        with pytest.raises(ConfigError) as caught:
            parse_config(_with_report(tmp_path, notify, {"at": "07:00"}))
        assert "At 'report.at': the report is sent through notify.urls, and no URL there takes" in str(caught.value)
    only_one = {"urls": ["json://127.0.0.1:9/a", {"url": "json://127.0.0.1:9/b", "events": ["report"]}],
                "events": ["failed"]}
    assert parse_config(_with_report(tmp_path, only_one, {"at": "07:00"})).report is not None
