"""Take secrets out of text before anyone can read it: logs, `doctor`, error messages.

Two kinds of secret reach text: the ones we were configured with (the API
key, the callback secret), and the ones Studio hands us inside URLs (the
presigned upload and download links, whose query string is a signature, a
credential and often a session token: anyone holding one can read or write
that object until it expires). The first are masked by value; the second by
shape: every value of every query string in the text is replaced, whatever
its name, since a store may call its signature anything.
"""

from __future__ import annotations

import re
from typing import Iterable

__all__ = ["REDACTED", "SHORTEST_SUBSTRING_SECRET", "SecretMasker", "redact_query_values"]

REDACTED = "[redacted]"

SHORTEST_SUBSTRING_SECRET = 8
"""Secrets this long or longer are masked wherever they appear, even inside a longer word.

A shorter one (the config refuses such an API key, but a secret may come from
elsewhere) is masked only where it stands as a whole token: masking "ab"
inside every word would make every log line unreadable, while a short secret
printed on its own (`key=ab`, `"ab"`) is exactly the leak to stop.
"""

# A query string: "?" then name=value pairs up to whitespace, a fragment,
# a quote, angle brackets or a backslash (the ends of a URL inside JSON,
# HTML or a Python repr). The look-ahead demands an "=" before that end, so
# a question mark in prose ("done? yes") is left alone.
_QUERY_STRING = re.compile(r"\?(?=[^\s#\"'<>\\]*=)([^\s#\"'<>\\]+)")
_PAIR = re.compile(r"(^|&)([^=&]*)=([^&]*)")


def redact_query_values(text: str) -> str:
    """Given any text, return it with every value of every URL query string in it replaced by [redacted].

    Names stay (`X-Amz-Signature=[redacted]`), so a reader still sees what
    kind of link it was; the URL without its query is left whole.
    """
    if "?" not in text:
        return text
    return _QUERY_STRING.sub(lambda m: "?" + _PAIR.sub(_redact_pair, m.group(1)), text)


def _redact_pair(match: re.Match[str]) -> str:
    separator, name, value = match.groups()
    return f"{separator}{name}={REDACTED}" if value else match.group()


class SecretMasker:
    """Masks a fixed set of secrets in text: long ones anywhere, short ones as whole tokens."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        unique = sorted({s for s in secrets if s}, key=len, reverse=True)
        patterns = [re.escape(s) if len(s) >= SHORTEST_SUBSTRING_SECRET else rf"(?<!\w){re.escape(s)}(?!\w)"
                    for s in unique]
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def mask(self, text: str) -> str:
        """Given any text, return it with every secret replaced by [redacted]."""
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def clean(self, text: str) -> str:
        """Given any text, return it with the secrets masked and every query value redacted."""
        return redact_query_values(self.mask(text))
