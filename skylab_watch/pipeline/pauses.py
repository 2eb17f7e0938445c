"""Watches paused by hand (`skylab-watch pause WATCH`), as the running daemon obeys them.

The pause lives in the ledger (`paused_watches`), written by the command in another process;
the daemon reads it on every pass (a fraction of a second). A paused watch takes nothing new
towards Studio: its settled files are not taken in, its ready photos not batched, its jobs not
closed, created or queued, its photos not uploaded (uploads already running finish). Files keep
being noticed, and photos already at Studio are still fetched and delivered, originals handled.
"""

from __future__ import annotations

import logging

from skylab_watch.ledger import Ledger

log = logging.getLogger("skylab_watch")


class HandPauses:
    """Reads the pauses made by hand and says once in the log when one begins or ends."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._held: dict[str, str] = {}

    def refresh(self) -> set[str]:
        """Return the names of the watches paused by hand now; log the ones paused or resumed since last time."""
        held = {w: reason for w, (reason, _) in self.ledger.paused_by_hand().items()}
        for watch in held.keys() - self._held.keys():
            log.warning("%s: paused by hand (%s): no new photos are taken in or sent until `skylab-watch resume "
                        "%s`; photos already at Studio are still delivered", watch, held[watch], watch)
        for watch in self._held.keys() - held.keys():
            log.info("%s: resumed by hand; taking in and sending photos again", watch)
        self._held = held
        return set(held)
