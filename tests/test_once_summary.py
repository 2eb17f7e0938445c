"""`run --once` ends with a summary of the run and an exit code that says what happened.

0 all done, 1 something failed (tested in test_report.py's night and
test_daemon_behaviour.py), 2 config refused, 3 done but some files were
rejected. Every test runs the real command in a process.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import make_image
from daemon_helpers import REPO, run_once, write_config

from skylab_watch.cli import main


@pytest.fixture
def emu(plain_emulator):
    return plain_emulator


def _one_watch(tmp_path, emu):
    watch = {"name": "w", "input": tmp_path / "in", "output": tmp_path / "out", "profile": "plain"}
    return write_config(tmp_path, emu.url, [watch])


def test_a_run_with_a_rejected_file_exits_3_and_prints_the_summary_on_stdout(tmp_path, emu) -> None:
    cfg = _one_watch(tmp_path, emu)
    make_image(tmp_path / "in" / "a.jpg", seed=1)
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    proc = subprocess.run([sys.executable, "-m", "skylab_watch", "run", "--once", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120, cwd=str(REPO),
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "w: 2 found, 1 sent, 1 delivered, 1 rejected" in proc.stdout
    assert "rejected: empty.jpg: " in proc.stdout and "empty" in proc.stdout.split("rejected: empty.jpg: ")[1]
    assert proc.stdout.rstrip().endswith("exit 3: done, but some files were rejected")
    assert "Summary of this run" not in proc.stderr, "the logs (stderr) stay log lines"


def test_a_later_clean_run_exits_0_and_its_summary_counts_only_that_run(tmp_path, emu) -> None:
    cfg = _one_watch(tmp_path, emu)
    (tmp_path / "in" / "empty.jpg").write_bytes(b"")
    assert run_once(cfg) == 3
    make_image(tmp_path / "in" / "a.jpg", seed=1)
    make_image(tmp_path / "in" / "b.jpg", seed=2)
    assert run_once(cfg) == 0, "the rejection was the first run's news (it stays in `report`)"
    log = (tmp_path / "daemon.log").read_text()
    summary = log[log.rindex("Summary of this run"):]
    assert "w: 2 found, 2 sent, 2 delivered, 0 rejected" in summary
    assert "empty.jpg" not in summary
    assert "exit 0: all done" in summary


def test_a_refused_config_exits_2_without_a_summary(tmp_path, emu) -> None:
    cfg = _one_watch(tmp_path, emu)
    cfg.write_text(cfg.read_text().replace("profile: plain", "profile: no-such-profile"))
    assert run_once(cfg) == 2
    log = (tmp_path / "daemon.log").read_text()
    assert "no-such-profile" in log and "Summary of this run" not in log


def test_run_help_documents_the_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for line in ("0  done", "1  with --once: a photo failed", "2  the config is refused", "3  with --once: done"):
        assert line in out
