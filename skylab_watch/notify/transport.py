"""Delivering one message to one notifier through apprise, imported lazily (the `notify` extra).

Machinery only: it knows URLs, titles and bodies, nothing of photos. URLs often hold tokens,
so a notifier is only ever named by apprise's privacy form of its URL.

A message may come as a text and an HTML rendering of the same thing (the morning report).
apprise sends one body per notification and converts it to each notifier's format itself, so
we choose per notifier: the HTML to those whose own format is HTML (e-mail, which apprise sends
as multipart/alternative with a plain part converted from the HTML; any URL with `?format=html`),
our own text to the rest (chat, ntfy, SMS, webhooks), rather than apprise's conversion of HTML.
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

    def takes_html(self, index: int) -> bool:
        """Tell whether the notifier at `index` speaks HTML by default (e-mail) or by its URL's `?format=html`.

        A webhook that merely passes any format through (json://) gets text unless its URL asks for HTML.
        """
        server = self._servers[index]
        resolve = getattr(server, "resolve_format", None)  # apprise 2: the format a send uses when none is asked
        own = resolve(None) if callable(resolve) else getattr(server, "notify_format", None)
        return bool(own == self._apprise.NotifyFormat.HTML)

    def send(self, index: int, title: str, body: str, html: str | None = None) -> str | None:
        """Deliver to the notifier at `index` (`html` instead of `body` if it takes HTML); return None if it
        took the message, else why not."""
        server = self._servers[index]
        if server is None:
            return "apprise does not understand this URL"
        # Text goes as before (no body_format: apprise passes it through); HTML is declared as HTML.
        extra = {"body": html, "body_format": self._apprise.NotifyFormat.HTML} \
            if html is not None and self.takes_html(index) else {"body": body}
        with self._apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            try:
                ok = server.notify(title=title, **extra)
            except Exception as exc:  # noqa: BLE001 - a plugin's bug must not end the sender thread
                return f"{type(exc).__name__}: {exc}"
        if ok:
            return None
        detail = " ".join(captured.getvalue().split())[:300]
        return detail or "the notifier did not take the message"
