"""The ledger's own errors: what callers catch instead of `sqlite3`'s.

Every statement the ledger runs has its `sqlite3` errors turned into one of
these by `translate`, with a message that says how to fix the problem, so
no module outside `ledger/` needs to know that SQLite is underneath.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from skylab_watch.errors import LedgerError

__all__ = ["LedgerError", "NameTaken", "translate"]


class NameTaken(LedgerError):
    """A row with the same unique name (a job name, a photo name in a job, a file version) is
    already recorded. Worth retrying with another name; nothing was written.
    """


def translate(exc: sqlite3.Error, path: Path) -> LedgerError:
    """Given an error SQLite raised on the ledger at `path`, return the ledger error to raise instead."""
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, sqlite3.IntegrityError) and "unique" in lowered:
        return NameTaken(f"the ledger {path} already records that name ({text})")
    if isinstance(exc, sqlite3.IntegrityError):
        return LedgerError(f"the ledger {path} refused an inconsistent change ({text}); "
                           "this is a skylab-watch bug: please report it with the log")
    if "locked" in lowered or "busy" in lowered:
        return LedgerError(f"the ledger {path} stayed locked by another process ({text}); "
                           "make sure only one skylab-watch daemon uses it")
    if "readonly" in lowered or "read-only" in lowered:
        return LedgerError(f"cannot write to the ledger {path} ({text}); "
                           "check its owner and permissions, and those of its folder")
    if "full" in lowered:
        return LedgerError(f"cannot save to the ledger {path} ({text}); free space on its disk")
    if "not a database" in lowered or "malformed" in lowered:
        return LedgerError(f"the ledger {path} is damaged or not a skylab-watch ledger ({text}); "
                           "move it aside (the daemon starts a new one) or restore a backup")
    return LedgerError(f"the ledger {path} failed ({text}); check that this user may write it "
                       "and its folder, and that the disk is not full")
