"""Alerts about conditions that start and end: out of credits, a watch paused, the output disk refusing.

The daemon already records each condition as a ledger notice (`credits`, `watch:NAME`,
`output:NAME`) and a pause by hand in `paused_watches`; this module compares what the ledger
says on each pass with what it said before and turns every change into an alert. Conditions
standing when the daemon starts were announced by the run that raised them, so they are not
announced again; their end is.
"""

from __future__ import annotations

from dataclasses import dataclass

from skylab_watch.ledger import Ledger


@dataclass(frozen=True)
class Change:
    """One condition that began or ended: the event it belongs to, a title and a body."""

    event: str
    title: str
    body: str


def _describe(key: str, message: str, began: bool) -> Change | None:
    """Given a notice key and message, return the alert of its start (began) or end; None if not alerted."""
    kind, _, name = key.partition(":")
    if kind == "credits":
        return (Change("credits", "Studio account out of credits", message) if began else
                Change("credits", "Studio credits are back", "Studio accepts work again: uploads and queueing resume."))
    if kind == "watch":
        return (Change("paused", f"watch {name} paused", f"{name}: {message}") if began else
                Change("paused", f"watch {name} resumed", f"{name}: its input folder is back; the watch carries on."))
    if kind == "output":
        return (Change("disk_full", f"cannot write outputs of {name}", f"{name}: {message}") if began else
                Change("disk_full", f"outputs of {name} are written again", f"{name}: the output disk takes writes "
                                                                           "again; deliveries carry on."))
    return None


class ConditionWatcher:
    """Remembers the notices and hand pauses of the last pass; `changes()` says what began or ended since."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._notices = {k: m for k, (m, _) in ledger.notices().items()}
        self._held = {w: r for w, (r, _) in ledger.paused_by_hand().items()}

    def changes(self) -> list[Change]:
        """Return the conditions that began or ended since the last call."""
        notices = {k: m for k, (m, _) in self.ledger.notices().items()}
        held = {w: r for w, (r, _) in self.ledger.paused_by_hand().items()}
        found = [_describe(k, notices[k], True) for k in notices if k not in self._notices]
        found += [_describe(k, self._notices[k], False) for k in self._notices if k not in notices]
        found += [Change("paused", f"watch {w} paused by hand", f"{w}: paused with skylab-watch pause: {held[w]}. "
                                                                  "Photos already at Studio are still delivered.")
                  for w in held if w not in self._held]
        found += [Change("paused", f"watch {w} resumed by hand", f"{w}: resumed with skylab-watch resume.")
                  for w in self._held if w not in held]
        self._notices, self._held = notices, held
        return [c for c in found if c is not None]
