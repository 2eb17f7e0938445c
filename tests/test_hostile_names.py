"""Hostile names and links in the output tree, through the real daemon (`run --once`) against the emulator.

One night is run once for the module (a subprocess daemon costs seconds):
a watch whose profile composites each photo over two backgrounds, so every
output is named `<stem> (<label>).jpg`, fed with
- a photo whose 250-byte name makes outputs of 258 bytes (over NAME_MAX),
- a photo named with a newline and a terminal escape sequence,
- a photo whose mirrored output folder is a link to a folder outside,
- a photo whose output name is taken by a link to a file outside,
- a plain control photo, which must come through untouched by the others;
and a junk file with a hostile name, rejected. Each test reads one fact of
that night from the ledger, the emulator, the disk or `status`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from daemon_helpers import run_once, write_config
from support import API_KEY, make_image

from skylab_watch import cli
from skylab_watch.emulator import Emulator
from skylab_watch.ledger import Ledger, Photo

LONG = "x" * 246 + ".jpg"                 # 250 bytes; "<stem> (beach).jpg" is 258
HOSTILE = "bad\n\x1b[31mname.jpg"         # would forge a line and turn a terminal red
JUNK = "junk\n\x1b[2Jwipe.jpg"            # not an image at all: rejected
SHOWN = "bad\\n\\x1b[31mname.jpg"


@dataclass
class Night:
    """What one `run --once` left behind."""

    tmp: Path
    config: Path
    out: Path
    outside: Path
    code: int
    photos: dict[str, Photo]
    store_gets: int


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Night:
    tmp = tmp_path_factory.mktemp("hostile")
    backgrounds = [make_image(tmp / "bgs" / "beach.jpg", 64, 48, seed=5),
                   make_image(tmp / "bgs" / "grey.png", 64, 48, seed=9)]
    spec = "scenes" + "".join(f":bg={bg}" for bg in backgrounds)
    inp, out, outside = tmp / "in", tmp / "out", tmp / "outside"
    for name in (LONG, HOSTILE, "sub/linked-folder.jpg", "taken.jpg", "control.jpg"):
        make_image(inp / name, 64, 48, seed=len(name))
    (inp / JUNK).write_bytes(b"this is not a photo")
    (outside / "folder").mkdir(parents=True)
    (outside / "target.jpg").write_bytes(b"a file outside the output folder")
    out.mkdir()
    (out / "sub").symlink_to(outside / "folder")
    (out / "taken (beach).jpg").symlink_to(outside / "target.jpg")
    with Emulator(api_key=API_KEY, processing_seconds=0.2, profiles=[spec]) as emu:
        config = write_config(tmp, emu.url, [{"name": "w", "input": inp, "output": out, "profile": "scenes"}])
        code = run_once(config, timeout=60)
        gets = emu.calls().get("GET store", 0)
    ledger = Ledger(tmp / "state" / "ledger.sqlite3")
    try:
        photos = {p.rel_path: p for p in ledger.photos_in_state("done", "failed", "rejected")}
    finally:
        ledger.close()
    return Night(tmp, config, out, outside, code, photos, gets)


def test_a_final_name_over_name_max_fails_the_photo_naming_watch_path_and_limit(night: Night):
    photo = night.photos[LONG]
    assert photo.state == "failed"
    assert photo.reason.startswith(f"w: {LONG}: delivery failed: a name the filesystem cannot hold")
    assert "258 bytes" in photo.reason and "255" in photo.reason


def test_a_name_too_long_is_downloaded_a_bounded_number_of_times_and_the_run_ends(night: Night):
    assert night.code == 1, "--once ends (1: something failed) instead of fetching the result on every poll"
    # Five photos delivered or failed, one result each, plus the two backgrounds at most once per job:
    # a result fetched again on every poll would be many more.
    assert night.store_gets <= 5 + 2 * 2, night.store_gets


def test_no_output_or_temp_is_left_with_an_overlong_or_partial_name(night: Night):
    names = [p.name for p in night.out.rglob("*") if not p.is_symlink()]
    assert all(len(os.fsencode(n)) <= 255 for n in names)
    assert not [n for n in names if n.endswith(".skylab-part")]


def test_the_control_photo_and_the_hostile_named_photo_are_delivered(night: Night):
    assert night.photos["control.jpg"].state == "done"
    assert night.photos[HOSTILE].state == "done"
    assert (night.out / "control (beach).jpg").is_file() and (night.out / "control (grey).jpg").is_file()
    assert (night.out / "bad\n\x1b[31mname (beach).jpg").is_file()


def test_a_linked_output_subfolder_fails_the_photo_and_nothing_is_written_outside(night: Night):
    photo = night.photos["sub/linked-folder.jpg"]
    assert photo.state == "failed"
    assert "symbolic link" in photo.reason and str(night.out / "sub") in photo.reason
    assert list((night.outside / "folder").iterdir()) == []


def test_a_link_at_the_output_name_fails_the_photo_and_its_target_is_untouched(night: Night):
    photo = night.photos["taken.jpg"]
    assert photo.state == "failed"
    assert "symbolic link" in photo.reason and "taken (beach).jpg" in photo.reason
    assert (night.outside / "target.jpg").read_bytes() == b"a file outside the output folder"
    assert (night.out / "taken (beach).jpg").is_symlink()


def _status(night: Night, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    capsys.readouterr()
    assert cli.main(["status", "--config", str(night.config), *extra]) == 0
    return capsys.readouterr().out


def test_status_text_shows_control_characters_in_names_escaped(night: Night, capsys):
    assert night.photos[JUNK].state == "rejected"
    text = _status(night, capsys)
    assert "\x1b" not in text
    assert "junk\\n\\x1b[2Jwipe.jpg: rejected" in text
    rows = [line for line in text.splitlines() if "junk" in line]
    assert len(rows) == 1, "the newline in the name did not split its row in two"


def test_status_json_stays_valid_and_carries_the_exact_name(night: Night, capsys):
    report = json.loads(_status(night, capsys, "--json"))
    assert JUNK in [p["path"] for p in report["problems"]]


def test_retry_prints_the_names_escaped(night: Night, capsys, tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(night.config.read_text().replace(str(night.tmp / "state"), str(tmp_path)))
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    try:
        ledger.add_photo("w", HOSTILE, 1, 1, "md5", "failed", reason=f"w: {HOSTILE}: Studio failed the photo")
    finally:
        ledger.close()
    capsys.readouterr()
    assert cli.main(["retry", "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed
    assert printed == f"w: {SHOWN} will be sent again (it failed: w: {SHOWN}: Studio failed the photo)\n"
