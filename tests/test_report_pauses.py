"""Paused watches in `skylab-watch report`: by hand (`pause`) and because the input share is gone,
each with why and since when, in the text, the HTML and `--json`, made by a running daemon."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from daemon_helpers import DaemonThread, write_config
from support import wait_for

from skylab_watch.cli import main
from skylab_watch.ledger import Ledger
from skylab_watch.report import build_report
from skylab_watch.report_render import render_html


def test_watches_paused_by_hand_and_by_a_vanished_share_show_why_and_since_in_the_report(
        tmp_path: Path, plain_emulator, capsys) -> None:
    cfg = write_config(tmp_path, plain_emulator.url, [
        {"name": n, "input": tmp_path / n / "in", "output": tmp_path / n / "out", "profile": "plain"}
        for n in ("packshots", "portraits", "weddings")])
    with DaemonThread(cfg) as d:
        assert main(["pause", "--config", str(cfg), "packshots", "--reason", "wrong <profile>"]) == 0
        shutil.rmtree(tmp_path / "portraits" / "in")
        wait_for(lambda: "watch:portraits" in d.ledger.notices(), what="the share-gone pause")
        capsys.readouterr()
        assert main(["report", "--config", str(cfg), "--json"]) == 0
        watches = json.loads(capsys.readouterr().out)["watches"]
        assert main(["report", "--config", str(cfg)]) == 0
        text = capsys.readouterr().out
        page = render_html(build_report(d.ledger, time.time() - 3600, time.time(), ["weddings"]))
    (by_hand,) = watches["packshots"]["paused"]
    assert by_hand["by"] == "hand" and by_hand["reason"] == "wrong <profile>" and by_hand["since"].startswith("20")
    (share,) = watches["portraits"]["paused"]
    assert share["by"] == "share" and str(tmp_path / "portraits" / "in") in share["reason"]
    assert watches["weddings"]["paused"] == []
    assert "  paused by hand since " in text and ": wrong <profile> (skylab-watch resume packshots lifts it)" in text
    assert f"  paused: {tmp_path / 'portraits' / 'in'}" in text and "it resumes when the folder is back" in text
    assert "<h3>Paused</h3>" in page and "packshots: paused by hand since" in page
    assert "wrong &lt;profile&gt;" in page and "<profile>" not in page


def test_a_resumed_watch_is_no_longer_shown_paused(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        ledger.pause_watch("w", "reshoot", time.time())
        assert [p.reason for p in build_report(ledger, 0, time.time(), ["w"]).watches[0].paused] == ["reshoot"]
        ledger.resume_watch("w")
        assert build_report(ledger, 0, time.time(), ["w"]).watches[0].paused == []
    finally:
        ledger.close()
