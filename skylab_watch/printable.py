"""Make any text safe to print on one line of a terminal, a log or a report.

File names come from whoever writes into the watched folders: a name may hold
a newline (which would forge a second log line), terminal escape sequences
(which would recolour or rewrite the operator's screen), or bytes that are not
UTF-8 (which Python keeps as lone surrogates, and which break a UTF-8 stream).
`printable` turns each of those into a visible escape and leaves everything
else, including ordinary non-ASCII letters, as it is.
"""

from __future__ import annotations

import re

__all__ = ["printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# C0 controls, DEL, C1 controls, and the lone surrogates U+DC80..U+DCFF that
# os.fsdecode's surrogateescape uses for bytes that are not UTF-8.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\udc80-\udcff]")


def printable(text: str) -> str:
    """Given any text, return it with control characters and undecodable bytes as visible escapes.

    `\\n`, `\\r` and `\\t` become those two-character escapes; any other
    control character becomes `\\xNN`; a byte that was not UTF-8 (a
    surrogate-escaped U+DCNN) becomes `\\xNN` of the original byte. Text
    without any of them is returned unchanged (and cheaply).
    """
    if not _UNPRINTABLE.search(text):
        return text
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}"
