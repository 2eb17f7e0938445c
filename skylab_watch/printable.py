"""File names made safe to print on a terminal or in a one-line-per-entry text.

A file name on Linux may hold any byte but `/` and NUL: a newline that forges
a second log line or status row, an ESC that starts a terminal escape
sequence (recolouring, retitling, even rewriting the screen), or bytes that
are not UTF-8 at all, which Python keeps as lone surrogates
(`surrogateescape`) and which crash a strict encoder. `printable` turns all
of those into visible escapes and leaves every ordinary character, accented
or not, as it is, so `café.jpg` still reads `café.jpg`.

Backslashes are left alone: escaping them would double every separator of a
Windows path, and a name that spells `\\x1b` literally is harmless text.
"""

from __future__ import annotations

import os
import re

__all__ = ["printable"]

# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators
# (line breaks to many viewers), the bidirectional marks, embeddings,
# overrides and isolates (which make `gpj.exe` read `exe.jpg`) and every
# surrogate code point.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ud800-\udfff]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# surrogateescape maps an undecodable byte 0xNN (0x80..0xff) to U+DCNN.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def printable(name: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """Given a file name or path, return it with control characters and undecodable bytes as visible escapes.

    `\\n`, `\\r` and `\\t` read as such; other controls and each byte that
    was not valid UTF-8 read `\\xNN`; a stray surrogate not made by
    surrogateescape reads `\\udNNN`. The result always encodes as UTF-8.
    """
    text = os.fsdecode(name) if not isinstance(name, str) else name
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    """Return the visible escape for one unsafe character."""
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"
