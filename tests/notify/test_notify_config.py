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
