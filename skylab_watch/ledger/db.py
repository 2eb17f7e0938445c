"""General SQLite machinery: one connection, one lock, explicit transactions,
named migrations. Knows nothing about photos or jobs.

Choice written down (architecture.md asks for it): threads share ONE
connection behind a re-entrant lock, as huey does. The daemon's writes are
small and short; one writer at a time is what SQLite allows anyway, and a
single connection makes "every state change in a transaction" easy to see.
Other processes (`skylab-watch status`) open their own connection; WAL lets
them read while the daemon writes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from skylab_watch.errors import LedgerError
from skylab_watch.ledger.errors import translate

log = logging.getLogger("skylab_watch.ledger")

Migration = tuple[str, Callable[[sqlite3.Connection], None]]

# Filesystems on which SQLite's WAL (shared memory + POSIX locks) is unsafe.
NETWORK_FILESYSTEMS = frozenset({
    "nfs", "nfs4", "cifs", "smb", "smb2", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p",
    "afs", "ceph", "glusterfs", "fuse.glusterfs", "davfs", "fuse.davfs2", "lustre",
})


def filesystem_type(path: Path, mounts_file: str = "/proc/self/mounts") -> str | None:
    """Return the type of the filesystem holding `path` (longest mount prefix), or None if unknown."""
    try:
        with open(mounts_file, encoding="utf-8") as fh:
            mounts = [line.split()[:3] for line in fh if line.strip()]
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for _dev, mount_point, fs_type in mounts:
        mount_point = mount_point.replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type


def refuse_network_filesystem(path: Path, mounts_file: str = "/proc/self/mounts") -> None:
    """Raise LedgerError if `path`'s folder is on a network filesystem, saying why."""
    fs_type = filesystem_type(path.parent, mounts_file)
    if fs_type and fs_type.lower() in NETWORK_FILESYSTEMS:
        raise LedgerError(
            f"the ledger {path} is on a network filesystem ({fs_type}). SQLite's write-ahead log "
            "needs shared memory and reliable locks, which network filesystems do not give, so the "
            "ledger could be corrupted. Put the ledger on a local disk (the watched folders may "
            "stay on the share).")


class TimedLock:
    """A re-entrant lock that keeps how often, and how long, its users had to wait for it.

    The ledger's one lock is shared by the work loop and every worker; the
    time spent waiting for it says whether they serialise on it (logged at
    stop, a /metrics counter). Counting costs a failed non-blocking acquire
    only when the lock is taken, and the counters are changed with it held.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.taken = 0
        self.waits = 0
        self.waited_seconds = 0.0

    def __enter__(self) -> TimedLock:
        if not self._lock.acquire(blocking=False):
            start = time.perf_counter()
            self._lock.acquire()
            self.waits += 1
            self.waited_seconds += time.perf_counter() - start
        self.taken += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class Database:
    """One SQLite file, opened in WAL mode with synchronous=FULL.

    `transaction()` is the one way to write: BEGIN IMMEDIATE, commit on
    success, roll back on error. Reads outside a transaction see the last
    committed state.
    """

    def __init__(self, path: Path, migrations: Sequence[Migration], check_filesystem: bool = True) -> None:
        self.path = Path(path)
        self._lock = TimedLock()
        self._depth = 0
        if check_filesystem:
            refuse_network_filesystem(self.path)
        self.conn = self._connect()
        self._migrate(migrations)

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise LedgerError(f"the ledger {self.path} cannot use WAL mode (got {mode})")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            return conn
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}. Check that the folder "
                              "exists, is writable by this user, and the disk is not full.") from exc
        except OSError as exc:
            raise LedgerError(f"cannot create the ledger folder {self.path.parent}: {exc.strerror}") from exc

    def lock_use(self) -> tuple[int, int, float]:
        """Return (times the lock was taken, times a user had to wait, seconds waited in all) since opening."""
        return self._lock.taken, self._lock.waits, self._lock.waited_seconds

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block as one write transaction; nested calls join the outer one.

        An sqlite3 error raised by a statement in the block leaves as the
        ledger's own error (see errors.translate), after the rollback.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.conn
                except sqlite3.Error as exc:
                    raise translate(exc, self.path) from exc
                finally:
                    self._depth -= 1
                return
            self._begin()
            self._depth = 1
            try:
                yield self.conn
            except BaseException as exc:
                self._depth = 0
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path) from exc
                raise
            self._depth = 0
            self._commit()

    def _rollback(self) -> None:
        """Roll back the open transaction; SQLite may already have (a full disk, an I/O error)."""
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _begin(self) -> None:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise translate(exc, self.path) from exc

    def _commit(self) -> None:
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise translate(exc, self.path) from exc

    def query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[sqlite3.Row]:
        """Run a read and return every row; raise LedgerError if SQLite fails."""
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc

    def query_one(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Row | None:
        """Run a read and return the first row, or None; raise LedgerError if SQLite fails."""
        with self._lock:
            try:
                return self.conn.execute(sql, params).fetchone()
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc

    def execute(self, sql: str, params: Sequence[Any] | dict = ()) -> sqlite3.Cursor:
        """Run one write statement in its own transaction (or the caller's)."""
        with self.transaction() as conn:
            return conn.execute(sql, params)

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        """Apply every migration past the file's user_version, each in its own transaction."""
        row = self.query_one("PRAGMA user_version")
        assert row is not None, "PRAGMA user_version always returns one row"
        current = row[0]
        if current > len(migrations):
            raise LedgerError(f"the ledger {self.path} was written by a newer skylab-watch "
                              f"(schema {current}, this one knows {len(migrations)}); upgrade skylab-watch")
        for number, (name, apply) in enumerate(migrations[current:], start=current + 1):
            with self.transaction() as conn:
                apply(conn)
                conn.execute(f"PRAGMA user_version={number}")
            log.info("ledger %s: applied migration %d (%s)", self.path, number, name)

