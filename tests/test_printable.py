"""printable(): names with control characters or undecodable bytes become visible, safe text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from skylab_watch.printable import printable


@pytest.mark.parametrize("name", ["IMG_0001.jpg", "café crème.jpg", "商品 写真.png", "a\\b.jpg", "emoji 📷.jpg", ""])
def test_ordinary_names_are_left_exactly_as_they_are(name: str) -> None:
    assert printable(name) == name


def test_newline_tab_and_carriage_return_read_as_backslash_letters() -> None:
    assert printable("a\nb\tc\rd.jpg") == "a\\nb\\tc\\rd.jpg"


def test_terminal_escape_sequence_loses_its_escape_character() -> None:
    shown = printable("bad\n\x1b[31mname.jpg")
    assert shown == "bad\\n\\x1b[31mname.jpg"
    assert "\x1b" not in shown and "\n" not in shown


@pytest.mark.parametrize(("char", "shown"), [("\x00", "\\x00"), ("\x07", "\\x07"), ("\x7f", "\\x7f"),
                                             ("\x85", "\\x85"), ("\x9b", "\\x9b"), ("\u2028", "\\u2028")])
def test_c0_del_c1_and_line_separators_are_escaped(char: str, shown: str) -> None:
    assert printable(f"x{char}y") == f"x{shown}y"


def test_undecodable_bytes_read_as_the_byte_they_were() -> None:
    name = b"caf\xe9-\xff.jpg".decode("utf-8", "surrogateescape")
    shown = printable(name)
    assert shown == "caf\\xe9-\\xff.jpg"
    shown.encode("utf-8")  # strict: would raise on a lone surrogate


def test_a_stray_surrogate_not_from_surrogateescape_is_escaped_too() -> None:
    assert printable("a\ud800b") == "a\\ud800b"


def test_paths_and_bytes_are_accepted() -> None:
    assert printable(Path("dir") / "x\ny.jpg") == os.path.join("dir", "x\\ny.jpg")
    assert printable(b"x\x1b\xff") == "x\\x1b\\xff"


def test_bidirectional_overrides_and_marks_are_escaped_so_a_name_cannot_read_backwards() -> None:
    assert printable("invoice\u202egpj.exe") == "invoice\\u202egpj.exe"
    assert printable("a\u2066b\u2069\u200fc") == "a\\u2066b\\u2069\\u200fc"
    assert printable("café ünïcode.jpg") == "café ünïcode.jpg"
