"""`skylab-watch pause` and `resume` against a running daemon."""

from __future__ import annotations

import json
from pathlib import Path

from daemon_helpers import DaemonThread, write_config
from support import make_image, plain_studio, wait_for

from skylab_watch.cli import main
from skylab_watch.ledger import SENT_STATES


def _two_watches(tmp: Path, emu) -> Path:
    return write_config(tmp, emu.url, [{"name": n, "input": tmp / n / "in", "output": tmp / n / "out",
                                        "profile": "plain"} for n in ("packshots", "portraits")])


def test_a_paused_watch_sends_nothing_while_the_other_goes_on_and_its_photo_goes_after_resume(
        tmp_path: Path, plain_emulator, capsys) -> None:
    cfg = _two_watches(tmp_path, plain_emulator)
    with DaemonThread(cfg) as d:
        assert main(["pause", "--config", str(cfg), "packshots", "--reason", "wrong profile"]) == 0
        assert "packshots: paused (wrong profile)" in capsys.readouterr().out
        wait_for(lambda: d.daemon.ctx.held_watches == {"packshots"}, timeout=1.5, what="obeyed within a second")
        make_image(tmp_path / "packshots" / "in" / "a.jpg", seed=1)
        make_image(tmp_path / "portraits" / "in" / "b.jpg", seed=2)
        wait_for(lambda: (tmp_path / "portraits" / "out" / "b.jpg").is_file(), what="the other watch's delivery")
        assert not [p for p in d.ledger.photos_in_state(*SENT_STATES) if p.watch == "packshots"]
        assert not d.ledger.jobs_in_state("open", "closed", "created", "queued", watch="packshots")
        assert main(["status", "--config", str(cfg), "--json"]) == 0
        paused = json.loads(capsys.readouterr().out)["paused"]
        assert [(p["watch"], p["reason"]) for p in paused] == [("packshots", "wrong profile")]
        assert main(["status", "--config", str(cfg)]) == 0
        assert "packshots: paused by hand since" in capsys.readouterr().out
        assert main(["resume", "--config", str(cfg), "packshots"]) == 0
        assert "packshots: resumed" in capsys.readouterr().out
        wait_for(lambda: (tmp_path / "packshots" / "out" / "a.jpg").is_file(), what="the delivery after resume")
        assert main(["status", "--config", str(cfg), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["paused"] == []


def test_photos_already_at_studio_are_still_delivered_after_a_pause(tmp_path: Path) -> None:
    with plain_studio(processing_seconds=1.5) as emu, DaemonThread(_two_watches(tmp_path, emu)) as d:
        make_image(tmp_path / "packshots" / "in" / "a.jpg", seed=3)
        wait_for(lambda: d.ledger.jobs_in_state("queued", watch="packshots"), what="the job at Studio")
        assert main(["pause", "--config", str(d.config.source), "packshots"]) == 0
        assert not (tmp_path / "packshots" / "out" / "a.jpg").exists(), "paused while the job is at Studio"
        wait_for(lambda: (tmp_path / "packshots" / "out" / "a.jpg").is_file(), what="the delivery while paused")


def test_pausing_an_unknown_watch_is_a_clear_error_with_exit_2(tmp_path: Path, plain_emulator, capsys) -> None:
    cfg = _two_watches(tmp_path, plain_emulator)
    assert main(["pause", "--config", str(cfg), "packshot"]) == 2
    assert "no watch named 'packshot' (known: packshots, portraits)" in capsys.readouterr().err
    assert main(["resume", "--config", str(cfg), "nope"]) == 2
    assert main(["pause", "--config", str(cfg), "packshots"]) == 0
    assert main(["pause", "--config", str(cfg), "packshots", "--reason", "again"]) == 0
    assert "already paused since" in capsys.readouterr().out
