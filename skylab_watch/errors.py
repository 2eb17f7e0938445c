"""The root of skylab-watch's own errors.

Every error the program raises on purpose derives from `SkylabWatchError`, so
a caller (the CLI, the daemon loop) can catch "our" failures by meaning and
let programming errors surface. Studio API errors live in
`skylab_watch.studio.errors`; they derive from this root too.
"""

from __future__ import annotations

from dataclasses import dataclass


class SkylabWatchError(Exception):
    """Base class of every error skylab-watch raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a configuration, kept as data so that callers never parse its text.

    `path` is the key path (`watches[1].batch.max_photos`), "" for the
    document as a whole, or None for the file itself (unreadable, not YAML).
    `fix`, when given, says what to do; the text shows it after the message.
    """

    path: str | None
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.message}; {self.fix}" if self.fix else self.message
        if self.path is None:
            return text
        return f"At '{self.path}': {text}" if self.path else f"At the top level: {text}"


class ConfigError(SkylabWatchError):
    """The configuration is invalid. Not worth retrying: a person must fix the file.

    `problems` holds every problem found, each naming the key path and the fix.
    """

    def __init__(self, problems: list[Problem], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems))

    def report(self) -> str:
        """Return every problem, one a line, and a closing count: what a command prints for a person."""
        count = len(self.problems)
        return f"{self}\n{self.source}: {count} problem{'s' if count != 1 else ''} found"


class LedgerError(SkylabWatchError):
    """The ledger cannot be opened or written. Usually needs a person (disk, path, permissions)."""
