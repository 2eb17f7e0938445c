"""The daily report (`report.at`): a running daemon against the emulator sends it once a day through the
alert outbox to a real HTTP receiver (apprise json://), text or HTML as each notifier takes it.

The time of day comes from the report's clock, which a test moves to just before `at` once the
night's work is done; everything else (ledger, emulator, receiver, apprise) is real.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from pathlib import Path

from daemon_helpers import DaemonThread, write_config
from notify_receiver import Receiver
from support import make_image, wait_for

from skylab_watch.config import ReportConfig
from skylab_watch.ledger import Ledger, PhotoState
from skylab_watch.notify.morning import SCHEDULE, DailyReport, latest_slot, slot_of

HTML_PATH = "/html"


def _at_hours_ahead(hours: float) -> tuple[str, float]:
    """Return `HH:MM` some hours from now and the Unix time of its next occurrence (seconds dropped)."""
    moment = (datetime.now() + timedelta(hours=hours)).replace(second=0, microsecond=0)
    return moment.strftime("%H:%M"), moment.timestamp()


def _config(tmp: Path, emu, rx: Receiver, at: str) -> Path:
    watches = [{"name": "packshots", "input": tmp / "in", "output": tmp / "out", "profile": "plain"}]
    urls = [f"{rx.apprise_url}?format=text", {"url": f"{rx.apprise_url.replace('/alerts', HTML_PATH)}?format=html",
                                              "events": ["report"]}]
    return write_config(tmp, emu.url, watches, notify={"urls": urls, "retry_seconds": 0.2},
                        report={"at": at, "since_hours": 12})


def _reports(rx: Receiver, path: str = "/alerts") -> list[dict]:
    return [a for a in rx.alerts(path) if "daily report" in a["title"]]


def _passes(d: DaemonThread, count: int) -> None:
    """Wait until the daemon's work loop has come round `count` more times."""
    seen = []
    d.daemon.on_loop = lambda _daemon: seen.append(1)
    wait_for(lambda: len(seen) >= count, what=f"{count} passes of the work loop")


def test_a_daemon_sends_one_report_at_report_at_with_its_figures_and_not_again_after_a_restart(
        tmp_path: Path, plain_emulator) -> None:
    at, slot = _at_hours_ahead(6)
    with Receiver() as rx:
        cfg = _config(tmp_path, plain_emulator, rx, at)
        with DaemonThread(cfg) as d:
            for seed in range(2):
                make_image(tmp_path / "in" / f"shoot/IMG_{seed}.jpg", seed=seed)
            (tmp_path / "in" / "notes.jpg").write_text("this is not a photo")
            wait_for(lambda: len(d.ledger.photos_in_state(PhotoState.DONE)) == 2
                     and d.ledger.photos_in_state(PhotoState.REJECTED), what="the night's work")
            _passes(d, 3)
            assert _reports(rx) == [], "not before report.at"
            offset = slot - 1.0 - time.time()  # the report's clock now reads a second before `at`
            d.daemon.notifications.daily.clock = lambda: time.time() + offset
            (text,) = wait_for(lambda: _reports(rx), what="the daily report")
            (html,) = wait_for(lambda: _reports(rx, HTML_PATH), what="the HTML report")
        made_at = datetime.fromtimestamp(slot).strftime("%Y-%m-%d %H:%M")
        assert f" to {made_at}\n" in text["message"], "made at report.at (the window ends then), not before"
        assert "2 delivered, 1 rejected, 0 failed" in text["title"]
        assert "packshots: 3 found, 2 sent, 2 delivered, 1 rejected" in text["message"]
        assert "rejected: notes.jpg: not a readable image" in text["message"]
        assert "<table" not in text["message"], "a text notifier gets the text rendering"
        assert "<table" in html["message"] and ">2</td>" in html["message"] and "notes.jpg" in html["message"]

        again = DaemonThread(cfg)
        again.daemon.notifications.daily.clock = lambda: time.time() + offset
        with again:
            _passes(again, 5)
            assert [a.event for a in again.ledger.alerts()].count("report") == 1
        assert len(_reports(rx)) == 1 and len(_reports(rx, HTML_PATH)) == 1, "once a day, even across a restart"
        assert Ledger(cfg.parent / "state" / "ledger.sqlite3").last_day(SCHEDULE) == \
            datetime.fromtimestamp(slot).date().isoformat()


def test_a_receiver_down_at_report_time_gets_the_report_later_and_the_work_never_waits(
        tmp_path: Path, plain_emulator) -> None:
    at, slot = _at_hours_ahead(6)
    with Receiver() as rx:
        rx.down = True
        d = DaemonThread(_config(tmp_path, plain_emulator, rx, at))
        offset = slot + 1800 - time.time()  # the daemon starts half an hour after `at`: a late report
        d.daemon.notifications.daily.clock = lambda: time.time() + offset
        with d:
            wait_for(lambda: any(a.event == "report" and a.last_error for a in d.ledger.alerts()),
                     what="a refused try of the report")
            make_image(tmp_path / "in" / "a.jpg")
            wait_for(lambda: (tmp_path / "out" / "a.jpg").is_file(), what="a delivery while the notifier is down")
            assert _reports(rx) == [] and rx.refused >= 1
            rx.down = False
            (report,) = wait_for(lambda: _reports(rx), timeout=10, what="the report after the outage")
        assert "packshots:" in report["message"]
        (alert,) = [a for a in Ledger(d.config.ledger).alerts() if a.event == "report"]
        assert alert.sent_at is not None and alert.attempts >= 2


def _daily(ledger: Ledger, at: str, now: float, late_hours: float = 5) -> DailyReport:
    return DailyReport(ReportConfig(at=at, late_hours=late_hours), ledger, ["w"], "test: ", clock=lambda: now)


def test_a_missed_report_is_sent_late_within_late_hours_and_skipped_after_saying_so(tmp_path, caplog) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        today = datetime.now().date()
        seven = slot_of(today, "07:00")
        assert _daily(ledger, "07:00", seven - 1).send_if_due() is False, "not before `at`"
        assert _daily(ledger, "07:00", seven + 6 * 3600).send_if_due() is False
        assert "daily report of" in caplog.text and "is skipped" in caplog.text
        assert ledger.last_day(SCHEDULE) is None and ledger.alerts() == []
        assert _daily(ledger, "07:00", seven + 4 * 3600).send_if_due() is True, "4 h late is within 5 h"
        assert ledger.last_day(SCHEDULE) == today.isoformat()
    finally:
        ledger.close()


def test_two_runs_on_one_ledger_send_the_day_once_and_the_next_day_again(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        seven = slot_of(datetime.now().date(), "07:00")
        first, second = _daily(ledger, "07:00", seven + 60), _daily(ledger, "07:00", seven + 120)
        assert first.send_if_due() is True
        assert second.send_if_due() is False, "the day is claimed in the ledger, not in memory"
        assert _daily(ledger, "07:00", seven + 86400 + 5).send_if_due() is True, "the next day"
        assert [a.event for a in ledger.alerts()] == ["report", "report"]
        assert all(a.html and "<table" in a.html and "w:" in a.body for a in ledger.alerts())
    finally:
        ledger.close()


def test_a_late_evening_report_missed_is_still_sent_after_midnight() -> None:
    ten_pm = slot_of(datetime.now().date() - timedelta(days=1), "22:00")
    day, slot = latest_slot(ten_pm + 3 * 3600, "22:00")
    assert slot == ten_pm and day == datetime.fromtimestamp(ten_pm).date(), "01:00 belongs to yesterday's 22:00"
