"""One daemon per ledger: an exclusive lock on a file beside the ledger, holding the owner's PID.

Two daemons on one ledger would both create jobs and upload the same photos
(a workstation's `run --once` next to the service, say). Readers and
occasional writers (`status`, `retry`, `doctor`) do not take the lock: SQLite
already orders their writes, and they must work while the daemon runs.

flock(2) is released by the kernel when the process dies, even on SIGKILL, so
a crash never leaves a stale lock; the file itself stays (removing it would
race with a daemon starting). The lock lives on the ledger's own local disk:
the ledger already refuses network filesystems, where flock is unreliable.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from skylab_watch.errors import LedgerError

__all__ = ["LedgerLock", "LedgerLocked", "lock_path"]


class LedgerLocked(LedgerError):
    """Another process holds the ledger's lock. Not worth retrying at once: that daemon must stop first."""

    def __init__(self, ledger: Path, pid: int | None) -> None:
        self.pid = pid
        holder = f"PID {pid}" if pid is not None else "another process (PID unknown)"
        super().__init__(f"another skylab-watch daemon ({holder}) is already running on the ledger {ledger} "
                         f"(lock {lock_path(ledger)}); stop it first, or give this config its own `ledger:`. "
                         "status, retry and doctor work while it runs.")


def lock_path(ledger: Path) -> Path:
    """Return the lock file of a ledger: `<ledger>.lock`."""
    return Path(f"{ledger}.lock")


class LedgerLock:
    """Hold the lock of one ledger for the life of a daemon; a context manager."""

    def __init__(self, ledger: str | Path) -> None:
        self.ledger = Path(ledger)
        self.path = lock_path(self.ledger)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock at once and write our PID into it; raise LedgerLocked if another process holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger lock {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LedgerLocked(self.ledger, pid) from None
        except OSError as exc:
            os.close(fd)
            raise LedgerError(f"cannot lock the ledger {self.ledger} ({self.path}): {exc.strerror or exc}") from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock (closing the file releases it); safe to call twice."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> LedgerLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    """Return the PID written in a lock file, or None if it is empty or unreadable (its owner is starting)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
