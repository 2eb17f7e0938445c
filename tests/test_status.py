"""The status report, built from a real ledger: categories, open jobs, problems and notices."""

from __future__ import annotations

from pathlib import Path

from daemon_helpers import write_config

from skylab_watch.cli import main
from skylab_watch.ledger import Ledger
from skylab_watch.status import build_report, format_report


def test_report_counts_each_photo_in_its_category_and_lists_jobs_problems_and_notices(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    job = ledger.reserve_job("w", "w-job", 1)
    for name, state in (("a.jpg", "queued"), ("b.jpg", "queued"), ("c.jpg", "ready"), ("d.jpg", "done")):
        photo = ledger.add_photo("w", name, 1, 1, name, state)
        if state == "queued":
            ledger.update_photo(photo.id, job_id=job.id, studio_name=name)
    for state in ("closed", "created", "queueing"):  # the moves the ledger allows
        ledger.update_job(job.id, state=state)
    ledger.update_job(job.id, state="queued", studio_status="processing")
    ledger.add_photo("w", "e.jpg", 1, 1, "e", "failed", reason="Studio failed the photo")
    ledger.add_photo("w", "c.jpg", 2, 2, "c2", "ready")  # supersedes c.jpg version 1: history, not counted
    ledger.set_notice("credits", "out of credits")
    report = build_report(ledger, ["w", "idle"])
    ledger.close()
    assert report["watches"]["w"] == {"waiting": 1, "uploading": 0, "queued": 0, "processing": 2, "done": 1,
                                      "rejected": 0, "duplicate": 0, "failed": 1}
    assert set(report["watches"]["idle"].values()) == {0}
    assert [(j["name"], j["photos"], j["studio_status"]) for j in report["jobs"]] == [("w-job", 2, "processing")]
    assert [(p["path"], p["reason"]) for p in report["problems"]] == [("e.jpg", "Studio failed the photo")]
    text = format_report(report)
    assert "! out of credits" in text and "w: 1 waiting, 0 uploading, 0 queued, 2 processing" in text
    assert "w: e.jpg: failed: Studio failed the photo" in text


def test_an_empty_ledger_says_so(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    report = build_report(ledger)
    ledger.close()
    assert format_report(report) == "The ledger is empty: no photo seen yet."


def test_status_and_report_before_any_run_say_there_is_no_ledger_yet_and_exit_2(tmp_path: Path, capsys) -> None:
    cfg = write_config(tmp_path, "http://127.0.0.1:9", [
        {"name": "w", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain"}])
    for command in ("status", "report"):
        assert main([command, "--config", str(cfg)]) == 2, command
        assert "has not run with this config" in capsys.readouterr().err
        assert not (tmp_path / "state" / "ledger.sqlite3").exists(), "no empty ledger is created"
