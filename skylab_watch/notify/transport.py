"""Delivering one message to one notifier through apprise, imported lazily (the `notify` extra).

Machinery only: it knows URLs, titles and bodies, nothing of photos. URLs often hold tokens,
so a notifier is only ever named by apprise's privacy form of its URL.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("skylab_watch")


class AppriseTransport:
    """Sends a title and a body to one apprise URL at a time; apprise's own timeouts bound each try (4 s)."""

    def __init__(self, urls: list[str]) -> None:
        import apprise  # the notify extra; load_config refuses notify.urls without it

        self._apprise = apprise
        self._servers: list[Any] = [apprise.Apprise.instantiate(url) for url in urls]

    def name(self, index: int) -> str:
        """Return how the notifier at `index` is named in logs and the ledger: its URL with secrets masked."""
        server = self._servers[index]
        return server.url(privacy=True) if server is not None else f"notifier #{index}"

    def send(self, index: int, title: str, body: str) -> str | None:
        """Deliver to the notifier at `index`; return None if it took the message, else why not."""
        server = self._servers[index]
        if server is None:
            return "apprise does not understand this URL"
        with self._apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            try:
                ok = server.notify(title=title, body=body)
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not end the sender thread
                return f"{type(exc).__name__}: {exc}"
        if ok:
            return None
        detail = " ".join(captured.getvalue().split())[:300]
        return detail or "the notifier did not take the message"
