"""The SQLite ledger: the only code that touches SQLite."""

from skylab_watch.ledger.db import Database, filesystem_type, refuse_network_filesystem
from skylab_watch.ledger.ledger import Ledger
from skylab_watch.ledger.lock import LedgerLock, LedgerLocked
from skylab_watch.ledger.records import FINAL_STATES, JOB_FINISHED_STATES, SENT_STATES, Job, Output, Photo

__all__ = ["Ledger", "LedgerLock", "LedgerLocked", "Database", "Photo", "Job", "Output", "SENT_STATES",
           "FINAL_STATES", "JOB_FINISHED_STATES", "filesystem_type", "refuse_network_filesystem"]
