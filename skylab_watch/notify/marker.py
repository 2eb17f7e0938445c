"""Knowing that the last run did not stop cleanly: a marker file beside the ledger.

`claim()` at start writes `<ledger>.running`; a clean stop removes it. Found at start, it
means the last run was killed, crashed, was restarted by the watchdog or lost power. A file,
not a ledger row: the ledger's tables are what the reports read, and this is no photo's state.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


class RunningMarker:
    """The `<ledger>.running` file of one daemon."""

    def __init__(self, ledger_path: Path) -> None:
        self.path = ledger_path.with_name(ledger_path.name + ".running")

    def claim(self) -> str | None:
        """Write the marker; return what the previous run's marker said if it was still there, else None."""
        previous = None
        try:
            previous = self.path.read_text(encoding="utf-8").strip() or "an earlier run"
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        try:
            self.path.write_text(f"pid {os.getpid()}, started {started}\n", encoding="utf-8")
        except OSError:
            pass  # a read-only state folder only costs us this alert
        return previous

    def release(self) -> None:
        """A clean stop: remove the marker."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
