"""`skylab-watch doctor`: each problem is found, with the right verdict and a fix that names the key or command.

Everything is real (folders, files, the emulator, a closed port) except what
cannot be made here: a network mount table and a low inotify limit, which
`run_checks` takes as parameters.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from support import API_KEY
from daemon_helpers import write_config

from skylab_watch.cli import main
from skylab_watch.config import Config, load_config
from skylab_watch.doctor import FAIL, OK, WARN, Finding, run_checks
from skylab_watch.studio import StudioClient

PROFILE = "plain"


def _watch(tmp: Path, name: str = "packshots", **fields) -> dict:
    return {"name": name, "input": tmp / "in" / name, "output": tmp / "out" / name, "profile": PROFILE, **fields}


def _config(tmp: Path, url: str, watches: list[dict] | None = None, **top) -> Config:
    """Write a test config (its folders created) and load it the way doctor does."""
    path = write_config(tmp, url, watches if watches is not None else [_watch(tmp)], **top)
    return load_config(path, check_paths=False)


def _studio(url: str, api_key: str = API_KEY) -> dict:
    return {"api_url": url, "api_key": api_key, "connect_timeout": 2, "read_timeout": 5}


def _only(findings: list[Finding], check: str, verdict: str | None = None) -> Finding:
    """Return the one finding of `check` (with `verdict`, if given); fail the test if there is not exactly one."""
    chosen = [f for f in findings if f.check == check and (verdict is None or f.verdict == verdict)]
    assert len(chosen) == 1, f"expected one {check} {verdict or ''} finding, got {findings}"
    return chosen[0]


def _mounts(tmp: Path, *entries: tuple[Path, str]) -> str:
    """Write a mount table with `/` on ext4 plus the given (mount point, type) entries; return its path."""
    lines = ["/dev/vda / ext4 rw 0 0"] + [f"srv:/share {p.resolve()} {t} rw 0 0" for p, t in entries]
    path = tmp / "mounts"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


# --- the whole command ------------------------------------------------------------

def test_healthy_config_is_all_ok_and_exits_0_without_printing_the_key(plain_emulator, tmp_path, capsys) -> None:
    path = write_config(tmp_path, plain_emulator.url, [_watch(tmp_path)])
    code = main(["doctor", "--config", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "[ok]   api: Studio at " in out and "accepted the key (1 profile)" in out
    assert "[warn]" not in out and "[FAIL]" not in out
    assert "0 warnings, 0 failed" in out.splitlines()[-1]
    assert API_KEY not in out


def test_doctor_does_not_leave_a_new_ledger_behind(plain_emulator, tmp_path) -> None:
    config = _config(tmp_path, plain_emulator.url, ledger=str(tmp_path / "state" / "deep" / "ledger.sqlite3"))
    findings = run_checks(config)
    assert _only(findings, "ledger").verdict == OK
    assert not (tmp_path / "state").exists()


def test_an_existing_ledger_is_opened_and_written(plain_emulator, tmp_path) -> None:
    config = _config(tmp_path, plain_emulator.url)
    config.ledger.parent.mkdir(parents=True)
    config.ledger.write_bytes(b"this is not an SQLite file, and is bigger than its header" * 4)
    finding = _only(run_checks(config), "ledger")
    assert finding.verdict == FAIL and "ledger" in finding.fix


def test_a_failure_exits_1_and_json_lists_the_findings(plain_emulator, tmp_path, capsys) -> None:
    path = write_config(tmp_path, plain_emulator.url, [_watch(tmp_path)])
    (tmp_path / "in" / "packshots").rmdir()
    code = main(["doctor", "--config", str(path), "--json"])
    findings = json.loads(capsys.readouterr().out)
    assert code == 1
    failed = [f for f in findings if f["verdict"] == "fail"]
    assert [(f["check"], "watches[0].input" in f["fix"]) for f in failed] == [("folders", True)]


def test_an_invalid_config_exits_2_naming_the_key(tmp_path, capsys) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:1", [_watch(tmp_path, batch={"max_photos": 0})])
    assert main(["doctor", "--config", str(path)]) == 2
    assert "watches[0].batch.max_photos" in capsys.readouterr().err


def test_a_check_that_crashes_is_a_failed_finding_and_the_others_still_run(tmp_path) -> None:
    def broken_factory(config: Config) -> StudioClient:
        raise RuntimeError("boom")

    findings = run_checks(_config(tmp_path, "http://127.0.0.1:1"), client_factory=broken_factory)
    crashed = _only(findings, "api")
    assert crashed.verdict == FAIL and "RuntimeError: boom" in crashed.detail and "bug" in crashed.fix
    assert _only(findings, "folders").verdict == OK and _only(findings, "ledger").verdict == OK


# --- api and profiles -------------------------------------------------------------

def test_a_wrong_api_key_fails_the_api_check(plain_emulator, tmp_path, capsys) -> None:
    path = write_config(tmp_path, plain_emulator.url, [_watch(tmp_path)],
                        studio=_studio(plain_emulator.url, "wrong-key-42"))
    code = main(["doctor", "--config", str(path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "[FAIL] api: Studio at" in out and "refused the API key" in out
    assert "fix: check studio.api_key / studio.api_key_file" in out
    assert "wrong-key-42" not in out
    assert "[warn] profiles: not checked" in out


def test_a_closed_port_fails_the_api_check_as_unreachable(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    config = _config(tmp_path, url, studio=_studio(url))
    finding = _only(run_checks(config), "api")
    assert finding.verdict == FAIL
    assert finding.detail.startswith(f"cannot reach {url}")
    assert "studio.api_url" in finding.fix and "firewall" in finding.fix


def test_an_unknown_profile_fails_naming_the_watch_and_the_key(plain_emulator, tmp_path) -> None:
    watches = [_watch(tmp_path, "good"), _watch(tmp_path, "bad", profile="no-such-profile")]
    findings = run_checks(_config(tmp_path, plain_emulator.url, watches))
    failed = _only(findings, "profiles", FAIL)
    assert "watches[1] 'bad'" in failed.detail and "no-such-profile" in failed.detail
    assert "watches[1].profile" in failed.fix
    assert "watches[0] 'good'" in _only(findings, "profiles", OK).detail


# --- folders ----------------------------------------------------------------------

def test_a_missing_input_fails_the_folders_check(plain_emulator, tmp_path) -> None:
    config = _config(tmp_path, plain_emulator.url)
    config.watches[0].input.rmdir()
    finding = _only(run_checks(config), "folders")
    assert finding.verdict == FAIL and "does not exist" in finding.detail
    assert "watches[0].input" in finding.fix


def test_an_input_that_is_a_file_fails_the_folders_check(plain_emulator, tmp_path) -> None:
    config = _config(tmp_path, plain_emulator.url)
    config.watches[0].input.rmdir()
    config.watches[0].input.write_text("not a folder")
    finding = _only(run_checks(config), "folders")
    assert finding.verdict == FAIL and "is not a folder" in finding.detail
    assert "watches[0].input" in finding.fix


def test_an_output_under_a_regular_file_fails_the_folders_check(plain_emulator, tmp_path) -> None:
    blocker = tmp_path / "blocker"
    config = _config(tmp_path, plain_emulator.url, [_watch(tmp_path, output=blocker / "out")])
    shutil.rmtree(blocker)
    blocker.write_text("a file where a folder should be")
    finding = _only(run_checks(config), "folders")
    assert finding.verdict == FAIL and f"{blocker} is a file" in finding.detail
    assert "watches[0].output" in finding.fix


def test_an_output_that_does_not_exist_yet_but_can_be_created_is_ok(plain_emulator, tmp_path) -> None:
    config = _config(tmp_path, plain_emulator.url)
    config.watches[0].output.rmdir()
    assert _only(run_checks(config), "folders").verdict == OK


def test_doctor_fails_an_output_without_a_parent_as_check_config_does(plain_emulator, tmp_path, capsys) -> None:
    path = write_config(tmp_path, plain_emulator.url, [_watch(tmp_path)])
    shutil.rmtree(tmp_path / "out")
    finding = _only(run_checks(load_config(path, check_paths=False)), "folders")
    assert finding.verdict == FAIL and "nor its parent folder exists" in finding.detail
    assert finding.fix == f"create {tmp_path / 'out'} (the last folder is created on start) (watches[0].output)"
    assert main(["check-config", "--config", str(path)]) == 1
    assert f"At 'watches[0].output': {finding.detail.split(': ', 1)[1]}" in capsys.readouterr().err


def test_deleting_from_an_input_this_user_cannot_write_fails_naming_after_success(
        plain_emulator, tmp_path, monkeypatch) -> None:
    config = _config(tmp_path, plain_emulator.url, [_watch(tmp_path, after_success="delete")])
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: not (Path(path) == config.watches[0].input
                                                              and mode & os.W_OK) and real_access(path, mode))
    finding = _only(run_checks(config), "folders")
    assert finding.verdict == FAIL and "cannot remove files from input" in finding.detail
    assert "watches[0].after_success" in finding.fix


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the mode bits say")
def test_an_unreadable_input_fails_the_folders_check(plain_emulator, tmp_path) -> None:
    config = _config(tmp_path, plain_emulator.url)
    config.watches[0].input.chmod(0o000)
    try:
        finding = _only(run_checks(config), "folders")
    finally:
        config.watches[0].input.chmod(0o755)
    assert finding.verdict == FAIL and "cannot read folder" in finding.detail


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes whatever the mode bits say")
def test_archiving_from_a_read_only_input_fails_the_folders_check(plain_emulator, tmp_path) -> None:
    watch = _watch(tmp_path, after_success="archive", archive_dir=tmp_path / "archive")
    config = _config(tmp_path, plain_emulator.url, [watch])
    config.watches[0].input.chmod(0o555)
    try:
        finding = _only(run_checks(config), "folders")
    finally:
        config.watches[0].input.chmod(0o755)
    assert finding.verdict == FAIL and "watches[0].after_success" in finding.fix


# --- ledger -----------------------------------------------------------------------

def test_a_ledger_under_a_regular_file_fails_the_ledger_check(plain_emulator, tmp_path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    config = _config(tmp_path, plain_emulator.url, ledger=str(tmp_path / "blocker" / "ledger.sqlite3"))
    finding = _only(run_checks(config), "ledger")
    assert finding.verdict == FAIL and "blocker" in finding.detail
    assert finding.fix.startswith("set ledger to a file on a local disk")


def test_a_ledger_on_nfs_fails_the_ledger_check(plain_emulator, tmp_path) -> None:
    config = _config(tmp_path, plain_emulator.url)
    finding = _only(run_checks(config, mounts_file=_mounts(tmp_path, (tmp_path, "nfs4"))), "ledger")
    assert finding.verdict == FAIL and "network filesystem (nfs4)" in finding.detail
    assert "local disk" in finding.fix
    assert not config.ledger.exists()


# --- disk, network shares, inotify --------------------------------------------------

def test_too_little_free_space_warns_naming_the_output(plain_emulator, tmp_path) -> None:
    findings = run_checks(_config(tmp_path, plain_emulator.url), min_free_bytes=1 << 60)
    finding = _only(findings, "disk space")
    assert finding.verdict == WARN and "needed" in finding.detail
    assert "watches[0].output" in finding.fix
    assert not any(f.verdict == FAIL for f in findings)


def test_a_native_watch_on_cifs_warns_to_use_polling(plain_emulator, tmp_path) -> None:
    watches = [_watch(tmp_path, "native"), _watch(tmp_path, "polled", observer="polling")]
    config = _config(tmp_path, plain_emulator.url, watches)
    findings = run_checks(config, mounts_file=_mounts(tmp_path, (tmp_path / "in", "cifs")))
    finding = _only(findings, "network filesystem")
    assert finding.verdict == WARN and "watches[0] 'native'" in finding.detail and "cifs" in finding.detail
    assert finding.fix == "set watches[0].observer: polling"


def test_more_folders_than_the_inotify_limit_warns_with_the_sysctl(plain_emulator, tmp_path) -> None:
    watches = [_watch(tmp_path, "deep"), _watch(tmp_path, "polled", observer="polling")]
    config = _config(tmp_path, plain_emulator.url, watches)
    (config.watches[0].input / "a" / "b" / "c" / "d").mkdir(parents=True)
    (config.watches[1].input / "x" / "y" / "z").mkdir(parents=True)
    finding = _only(run_checks(config, inotify_limit=3), "inotify")
    assert finding.verdict == WARN and "need 5 inotify watches" in finding.detail and "limit is 3" in finding.detail
    assert "sysctl fs.inotify.max_user_watches=" in finding.fix and "/etc/sysctl.d/" in finding.fix


def test_an_unknown_inotify_limit_is_ok(plain_emulator, tmp_path) -> None:
    finding = _only(run_checks(_config(tmp_path, plain_emulator.url), inotify_limit=None), "inotify")
    assert finding.verdict == OK and "unknown" in finding.detail
