"""`skylab-watch run --once` as a person sees it: the real command on a pseudo-terminal against the
emulator, and the same command into pipes, with JSON logs or --no-progress, where no view may appear."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from daemon_helpers import REPO, write_config
from support import make_image, plain_studio
from terminal import run_on_pty, screen_lines, terminal_env

# A row of the view: the watch, then settling, waiting, uploading, at Studio ("3" or "3 (0 ahead)"),
# delivered, rejected, failed.
ROW = re.compile(r"^gallery\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)(?: \(\d+ ahead\))?\s+(\d+)\s+(\d+)\s+(\d+)\s*$")
# What only the live view writes: cursor hiding, moving up a line, erasing a line.
VIEW_SEQUENCES = ("\x1b[?25l", "\x1b[1A", "\x1b[2K")


def _command(cfg: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "skylab_watch", "run", "--once", "--config", str(cfg), *extra]


def _config(tmp_path: Path, url: str) -> Path:
    watch = {"name": "gallery", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain"}
    return write_config(tmp_path, url, [watch])


def test_run_once_on_a_terminal_shows_the_counts_move_and_leaves_the_last_frame_and_the_summary(tmp_path) -> None:
    with plain_studio(processing_seconds=1.5) as emu:  # long enough at Studio to be seen there
        cfg = _config(tmp_path, emu.url)
        for seed in range(3):
            make_image(tmp_path / "in" / f"p{seed}.jpg", seed=seed)
        (tmp_path / "in" / "empty.jpg").write_bytes(b"")
        code, output = run_on_pty(_command(cfg), REPO, terminal_env(PYTHONPATH=str(REPO)))
    lines = screen_lines(output)
    rows = [tuple(int(n) for n in m.groups()) for m in map(ROW.match, lines) if m]
    assert code == 3, output[-3000:]  # done, with a rejection
    assert all(seq in output for seq in VIEW_SEQUENCES), "drawn in place"
    frames = list(dict.fromkeys(rows))  # each distinct state of the row, in the order it was seen
    at_studio = [r for r in frames if r[3] == 3 and r[4] == 0]
    assert at_studio, f"the three photos were shown at Studio: {frames}"
    assert frames[-1] == (0, 0, 0, 0, 3, 1, 0), f"the last frame: all delivered, the empty file rejected: {frames}"
    assert frames.index(at_studio[0]) < len(frames) - 1, "counts moved from Studio to delivered"
    last_row = max(i for i, line in enumerate(lines) if ROW.match(line))
    after = lines[last_row + 1:]
    assert "Summary of this run" in after and after[-2:] != [], "the summary follows the last frame"
    assert any("exit 3: done, but some files were rejected" in line for line in after)
    assert any("uploaded p1.jpg" in line for line in lines[:last_row]), "log lines scrolled above the view"
    assert any(re.search(r"3 delivered · [\d.]+ photos/min · nothing left to do", line) for line in lines)


def test_run_once_into_pipes_prints_plain_log_lines_and_no_control_sequence(tmp_path, plain_emulator) -> None:
    cfg = _config(tmp_path, plain_emulator.url)
    done = subprocess.run(_command(cfg), capture_output=True, text=True, timeout=90, cwd=str(REPO),
                          env=terminal_env(PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr
    assert "INFO    skylab-watch is watching 1 folder(s)" in done.stderr, "the plain text format"
    assert "exit 0: all done" in done.stdout


@pytest.mark.parametrize("option", [["--log-format", "json"], ["--no-progress"]])
def test_run_once_on_a_terminal_with_json_logs_or_no_progress_draws_no_view(tmp_path, plain_emulator,
                                                                             option) -> None:
    cfg = _config(tmp_path, plain_emulator.url)
    code, output = run_on_pty(_command(cfg, *option), REPO, terminal_env(PYTHONPATH=str(REPO)))
    assert code == 0, output[-2000:]
    assert "\x1b" not in output, "plain lines: no colours, no cursor moves"
    assert "exit 0: all done" in output
    if "json" in option:
        assert any(line.startswith("{") and '"skylab-watch is watching' in line for line in output.splitlines())
