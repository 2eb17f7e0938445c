"""Daily tasks in the ledger: which local day each one last ran, claimed together with its alert.

Kept apart from `ledger.py` (one concept, one module); `Ledger` inherits these queries. The
morning report claims its day and puts its message in the alert outbox in ONE transaction, so
a crash can neither send it twice (the day is claimed) nor lose it (the alert is in the outbox).
"""

from __future__ import annotations

from skylab_watch.ledger.db import Database


class ScheduleQueries:
    """The `schedule` table, and alerts that carry an HTML part."""

    db: Database

    def last_day(self, name: str) -> str | None:
        """Return the local day (`YYYY-MM-DD`) the daily task `name` last ran, or None if it never did."""
        row = self.db.query_one("SELECT last_day FROM schedule WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def claim_day(self, name: str, day: str, now: float, alert: tuple[str, str, str, str | None] | None) -> bool:
        """Record that the daily task `name` ran on `day`, with its (event, title, body, html) alert if any.

        Return False, changing nothing, if it already ran on `day` (or a later one): another run of
        the daemon got there first. Days compare as text, which `YYYY-MM-DD` orders correctly.
        """
        with self.db.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO schedule (name, last_day, last_run) VALUES (?, ?, ?) ON CONFLICT (name) "
                "DO UPDATE SET last_day = excluded.last_day, last_run = excluded.last_run "
                "WHERE schedule.last_day < excluded.last_day", (name, day, now))
            if cur.rowcount != 1:
                return False
            if alert is not None:
                event, title, body, html = alert
                conn.execute("INSERT INTO alerts (event, title, body, html, created_at, next_try_at) "
                             "VALUES (?, ?, ?, ?, ?, ?)", (event, title, body, html, now, now))
            return True
