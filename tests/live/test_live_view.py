"""The live view's pieces: what a frame shows, the pace and time left, when a terminal gets the view,
log lines printed through rich, and figures read from a real daemon's ledger."""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import pytest
from daemon_helpers import DaemonThread, write_config
from rich.console import Console
from support import API_KEY, make_image, wait_for
from terminal import ANSI

from skylab_watch.live import Figures, Pace, Snapshot, WatchFigures, render, terminal_console
from skylab_watch.logs import setup_logging


def _frame(snapshot: Snapshot, elapsed: float = 75, width: int = 100) -> str:
    console = Console(width=width, force_terminal=True, record=True, file=io.StringIO())
    console.print(render(snapshot, elapsed, once=True))
    return console.export_text()


def test_a_frame_shows_each_watch_with_jobs_ahead_a_total_pace_time_left_and_why_a_watch_is_paused() -> None:
    snapshot = Snapshot(watches=(
        WatchFigures("packshots", settling=2, waiting=5, uploading=1, at_studio=12, jobs_in_front=3, delivered=40,
                     rejected=1, failed=2),
        WatchFigures("portraits", paused="input folder unreadable: does not exist")),
        per_minute=12.5, seconds_left=130, started=True)
    text = _frame(snapshot)
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.strip()}
    assert rows["packshots"] == ["2", "5", "1", "12", "(3", "ahead)", "40", "1", "2"]
    assert rows["portraits"] == ["0"] * 7
    assert rows["all"] == ["2", "5", "1", "12", "(3", "ahead)", "40", "1", "2"]
    assert "portraits: input folder unreadable: does not exist" in text
    assert "40 delivered · 12.5 photos/min · about 2 min left" in text
    assert "1 min" in text.splitlines()[0], "how long it has been running"


def test_a_watch_name_or_reason_holding_terminal_escapes_is_shown_escaped_never_obeyed() -> None:
    name, reason = "evil\x1b[2J\x1b]0;owned\x07", "gone\nforged line"
    text = _frame(Snapshot(watches=(WatchFigures(name, paused=reason),), started=True))
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[2J\\x1b]0;owned\\x07" in text
    assert "gone\\nforged line" in text


def test_the_pace_follows_the_last_minute_and_gives_the_time_left() -> None:
    pace = Pace(window=60)
    pace.add(0, 0)
    pace.add(1, 5)
    assert pace.per_minute() is None, "a second of samples is noise"
    pace.add(30, 20)
    assert pace.per_minute() == pytest.approx(40.0)
    assert pace.seconds_left(20) == pytest.approx(30.0)
    assert pace.seconds_left(0) == 0.0
    for t in range(31, 200):
        pace.add(t, 20)  # then nothing moves for a few minutes
    assert pace.per_minute() == 0.0 and pace.seconds_left(20) is None, "a stalled night has no estimate"


def test_only_a_capable_terminal_gets_the_view(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOURNAL_STREAM", "INVOCATION_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        try:
            assert terminal_console("text", stream=tty) is not None
            assert terminal_console("json", stream=tty) is None
            assert terminal_console("text", enabled=False, stream=tty) is None
            monkeypatch.setenv("TERM", "dumb")
            assert terminal_console("text", stream=tty) is None, "a terminal that cannot move its cursor"
            monkeypatch.setenv("TERM", "xterm-256color")
            monkeypatch.setenv("INVOCATION_ID", "0123")
            assert terminal_console("text", stream=tty) is None, "systemd's journal wants plain lines"
        finally:
            os.close(master)
    assert terminal_console("text", stream=io.StringIO()) is None, "a pipe or a file"


def test_log_lines_printed_above_the_view_keep_secrets_masked_and_names_escaped() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, force_terminal=True, markup=False, emoji=False)
    setup_logging("info", "text", secrets=[API_KEY], console=console)
    try:
        logging.getLogger("skylab_watch").warning(
            "key %s for [bold]%s[/bold] via %s", API_KEY, "a\x1b]0;owned\x07b.jpg",
            "http://127.0.0.1:9/o?X-Amz-Signature=5f1e2d3c")
    finally:
        setup_logging("info", "text", stream=io.StringIO())
    raw = out.getvalue()
    shown = ANSI.sub("", raw)  # rich's own colours out: the text a person reads
    assert API_KEY not in raw and "5f1e2d3c" not in raw and "[redacted]" in shown
    assert "\x1b]0;owned" not in raw and "a\\x1b]0;owned\\x07b.jpg" in shown
    assert "[bold]" in shown, "no markup: brackets in a message stay as they are"
    assert "WARNING" in shown


def test_figures_count_what_this_run_delivered_not_the_ledgers_history(tmp_path: Path, plain_emulator) -> None:
    watch = {"name": "gallery", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain"}
    cfg = write_config(tmp_path, plain_emulator.url, [watch])
    make_image(tmp_path / "in" / "old.jpg", seed=1)
    with DaemonThread(cfg) as first_run:
        wait_for(lambda: first_run.ledger.photos_in_state("done"), what="the first run's photo done")
    make_image(tmp_path / "in" / "new.jpg", seed=2)
    second_run = DaemonThread(cfg)
    figures = Figures(second_run.ledger, since=second_run.daemon.started_at)  # as `run` does: before the scan
    seen: list[WatchFigures] = []

    def delivered_one() -> bool:
        seen.append(figures.take(second_run.daemon).watches[0])
        return seen[-1].delivered >= 1 and seen[-1].left == 0
    with second_run:
        wait_for(delivered_one, what="the new photo delivered")
    assert seen[-1].name == "gallery" and seen[-1].delivered == 1, "old.jpg was the first run's news"
    assert any(w.left for w in seen), f"the new photo was seen on its way: {seen}"
    assert seen[-1].failed == seen[-1].rejected == 0
