"""`check-config --online`: the API key and every watch's profile are checked at Studio (the emulator)."""

from __future__ import annotations

from support import API_KEY
from daemon_helpers import write_config

from skylab_watch.cli import main


def _watch(tmp_path, name: str, profile: str) -> dict:
    return {"name": name, "input": tmp_path / "in" / name, "output": tmp_path / "out" / name, "profile": profile}


def test_online_check_passes_when_every_profile_exists(plain_emulator, tmp_path, capsys) -> None:
    cfg = write_config(tmp_path, plain_emulator.url, [_watch(tmp_path, "packshots", "plain")])
    assert main(["check-config", "--config", str(cfg), "--online"]) == 0
    captured = capsys.readouterr()
    assert "configuration OK (API key and profiles checked at Studio)" in captured.out
    assert API_KEY not in captured.out + captured.err


def test_a_missing_profile_fails_naming_the_watch_and_the_profile(plain_emulator, tmp_path, capsys) -> None:
    watches = [_watch(tmp_path, "packshots", "plain"), _watch(tmp_path, "portraits", "Portraits 2026")]
    cfg = write_config(tmp_path, plain_emulator.url, watches)
    assert main(["check-config", "--config", str(cfg)]) == 0, "offline, profiles are not looked up"
    capsys.readouterr()
    assert main(["check-config", "--config", str(cfg), "--online"]) == 1
    err = capsys.readouterr().err
    assert "error: watches[1] 'portraits' profile: no Studio profile named 'Portraits 2026' (known: plain)" in err
    assert "packshots" not in err
    assert "fix: create the profile in Studio or fix watches[1].profile" in err


def test_a_refused_key_fails_online_without_printing_it(plain_emulator, tmp_path, capsys) -> None:
    cfg = write_config(tmp_path, plain_emulator.url, [_watch(tmp_path, "packshots", "plain")])
    cfg.write_text(cfg.read_text().replace(API_KEY, "wrong-key-123"))
    assert main(["check-config", "--config", str(cfg), "--online"]) == 1
    captured = capsys.readouterr()
    assert "refused the API key" in captured.err
    assert "wrong-key-123" not in captured.out + captured.err
