"""Telling someone: alerts through apprise from a ledger outbox, and healthchecks.io-style health pings.

The work loop only ever inserts a row into the outbox (`Notifications.on_pass`); a sender thread
delivers it with bounded attempts, so a notifier that is down never holds up a photo and never
loses an alert. `skylab_watch.notify` imports apprise only when notify.urls is configured.
"""

from skylab_watch.notify.notifications import Notifications

__all__ = ["Notifications"]
