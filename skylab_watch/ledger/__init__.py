"""The SQLite ledger: the only code that touches SQLite.

Callers see typed records (`Photo`, `Job`, `Output`, `StateCount`) and the
ledger's own errors (`LedgerError`, `NameTaken`), never `sqlite3`.
"""

from skylab_watch.ledger.db import Database, filesystem_type, refuse_network_filesystem
from skylab_watch.ledger.errors import LedgerError, NameTaken
from skylab_watch.ledger.ledger import Ledger
from skylab_watch.ledger.lock import LedgerLock, LedgerLocked
from skylab_watch.ledger.records import Job, Output, Photo, StateCount
from skylab_watch.ledger.states import (
    FINAL_STATES, JOB_FINISHED_STATES, SENT_STATES, IllegalTransition, JobState, PhotoState,
)

__all__ = ["Ledger", "LedgerLock", "LedgerLocked", "Database", "Photo", "Job", "Output", "StateCount",
           "SENT_STATES", "FINAL_STATES", "JOB_FINISHED_STATES", "LedgerError", "NameTaken",
           "PhotoState", "JobState", "IllegalTransition",
           "filesystem_type", "refuse_network_filesystem"]
