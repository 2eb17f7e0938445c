"""`skylab-watch report`: the figures of a night of work made by running the daemon against the emulator.

The night: watch `good` gets three photos, a text file named like a photo
(rejected) and an unreadable file whose name carries a terminal escape and
HTML (rejected, and must be shown escaped); watch `broken` gets one photo
whose job Studio fails. Nothing of the ledger is written by hand.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import make_image, plain_studio
from daemon_helpers import run_once, write_config

from skylab_watch.cli import main
from skylab_watch.commands.report import parse_since
from skylab_watch.ledger import Ledger
from skylab_watch.report import build_report
from skylab_watch.report_render import render_html, render_text

HOSTILE = "bad\x1b[2Jname<b>.jpg"


@dataclass
class Night:
    config: Path
    ledger: Path
    code: int
    started: float


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Night:
    """Run the daemon once over a night's drop of files; the ledger it leaves is the night."""
    tmp = tmp_path_factory.mktemp("night")
    with plain_studio(faults={"fail_jobs": ["broken-*"]}) as emu:
        watches = [{"name": name, "input": tmp / "in" / name, "output": tmp / "out" / name, "profile": "plain"}
                   for name in ("good", "broken")]
        cfg = write_config(tmp, emu.url, watches)
        for seed in range(3):
            make_image(tmp / "in" / "good" / f"shoot/IMG_{seed}.jpg", seed=seed)
        (tmp / "in" / "good" / "notes.jpg").write_text("this is not a photo")
        (tmp / "in" / "good" / HOSTILE).write_bytes(b"\xff\xd8 not really a jpeg")
        make_image(tmp / "in" / "broken" / "doomed.jpg", seed=7)
        started = time.time()
        code = run_once(cfg)
    return Night(cfg, tmp / "state" / "ledger.sqlite3", code, started)


def test_report_json_of_the_night_counts_each_watch_with_reasons_waits_and_throughput(night, capsys) -> None:
    assert night.code == 1, "a failure outranks the rejections in the run's exit code"
    assert main(["report", "--config", str(night.config), "--since", "1h", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    good, broken = report["watches"]["good"], report["watches"]["broken"]
    assert (good["found"], good["sent"], good["delivered"], good["rejected"], good["failed"]) == (5, 3, 3, 2, 0)
    assert (broken["found"], broken["sent"], broken["delivered"], broken["failed"]) == (1, 1, 0, 1)
    assert good["jobs"] >= 1 and good["jobs_failed"] == 0
    assert broken["jobs"] == 1 and broken["jobs_failed"] == 1
    reasons = {p["path"]: p["reason"] for p in good["problems"]}
    assert "not a readable image" in reasons["notes.jpg"]
    assert HOSTILE in reasons, "JSON keeps the real name (json escapes it)"
    (failure,) = broken["problems"]
    assert failure["path"] == "doomed.jpg" and failure["state"] == "failed" and "failed" in failure["reason"]
    assert report["totals"]["delivered"] == 3 and report["totals"]["failed"] == 1
    assert 0 < good["waited_median"] <= good["waited_longest"] < time.time() - night.started
    assert good["per_hour"] == pytest.approx(3.0, abs=0.05), "3 delivered over a 1 h window"
    assert "credits" not in json.dumps(good), "Studio says nothing of credits spent: not reported"


def test_report_text_and_html_of_the_night_give_the_same_figures_with_names_escaped(night, capsys) -> None:
    assert main(["report", "--config", str(night.config), "--since", "1h"]) == 0
    text = capsys.readouterr().out
    assert "good: 5 found, 3 sent, 3 delivered, 2 rejected" in text
    assert "broken: 1 found, 1 sent, 0 delivered, 0 rejected, 0 duplicate(s), 1 failed; 1 job(s) (1 failed)" in text
    assert "failed: doomed.jpg: Studio reports job broken-" in text, "the reason, without repeating watch and path"
    assert "rejected: notes.jpg: not a readable image" in text
    assert "\x1b" not in text and "rejected: bad\\x1b[2Jname<b>.jpg" in text
    ledger = Ledger(night.ledger)
    try:
        page = render_html(build_report(ledger, time.time() - 3600, time.time()))
    finally:
        ledger.close()
    assert "<b>" not in page and "\x1b" not in page
    assert "bad\\x1b[2Jname&lt;b&gt;.jpg" in page
    assert "doomed.jpg" in page and "not a readable image" in page
    assert ">3</td>" in page, "the delivered count is in the table"


def test_a_window_before_the_work_reports_nothing_but_the_configured_watches(tmp_path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        ledger.add_photo("w", "late.jpg", 1, 1, "0" * 32, "rejected", reason="not a photo type")
        report = build_report(ledger, time.time() - 7200, time.time() - 3600, watches=["w", "quiet"])
    finally:
        ledger.close()
    assert [w.name for w in report.watches] == ["quiet", "w"]
    assert report.total("found") == 0 and report.total("rejected") == 0 and not report.problems


def test_notices_raised_and_cleared_in_the_window_are_reported_per_watch(tmp_path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        before = time.time() - 1
        ledger.set_notice("watch:w", "paused: /in/w: the folder is gone")
        ledger.clear_notice("watch:w")
        ledger.set_notice("credits", "Studio account out of credits")
        report = build_report(ledger, before, time.time() + 1, watches=["w"])
    finally:
        ledger.close()
    paused, credits = report.notices
    assert paused.watch == "w" and paused.cleared_at is not None
    assert credits.watch is None and credits.cleared_at is None
    text = render_text(report)
    assert "paused: /in/w: the folder is gone (raised " in text and ", cleared " in text
    assert "out of credits (raised " in text and "still standing" in text


def test_since_takes_a_duration_or_a_local_time_and_refuses_the_future() -> None:
    now = time.mktime((2026, 11, 25, 7, 0, 0, 0, 0, -1))
    assert parse_since("12h", now) == now - 12 * 3600
    assert parse_since("2026-11-24T18:00", now) == now - 13 * 3600
    with pytest.raises(Exception, match="future"):
        parse_since("2026-11-25T08:00", now)
    with pytest.raises(Exception, match="neither a duration"):
        parse_since("yesterday", now)


def test_report_refuses_a_bad_since_with_exit_2(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["report", "--config", str(tmp_path / "c.yaml"), "--since", "last tuesday"])
    assert stop.value.code == 2
    assert "neither a duration" in capsys.readouterr().err


def test_a_night_of_many_rejections_lists_fifty_per_watch_and_says_how_many_more(tmp_path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        before = time.time() - 1
        for i in range(55):
            ledger.add_photo("w", f"scan_{i}.tif", 1, 1, f"{i:032x}", "rejected", reason="not a photo type")
        report = build_report(ledger, before, time.time() + 1)
    finally:
        ledger.close()
    assert report.total("rejected") == 55
    text, page = render_text(report), render_html(report)
    assert text.count("rejected: scan_") == 50 and "... and 5 more" in text
    assert page.count("<li>w: rejected: ") == 50 and "... and 5 more" in page
