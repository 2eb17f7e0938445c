"""The live view of `run` at a terminal: a table per watch under the scrolling log lines.

rich does the terminal work: its `Live` display redraws the table in place a
few times a second and its logging handler (`skylab_watch.logs`) prints each
log line above it. The view is only ever drawn on a terminal: under systemd,
into a pipe or a file, with `--log-format json` or `--no-progress`,
`terminal_console` says no and not a byte of rich reaches the output.
Names and reasons go through `printable` and into rich as plain `Text`
(never markup), so a file or watch name cannot recolour or rewrite the screen.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Callable

from skylab_watch.live.figures import Snapshot, WatchFigures
from skylab_watch.logs import under_systemd
from skylab_watch.printable import printable

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

REFRESH_PER_SECOND = 4
"""Redraws a second; the figures behind them change at most twice a second (figures.SNAPSHOT_SECONDS)."""

COLUMNS = (("settling", "settling"), ("waiting", "waiting"), ("uploading", "uploading"), ("at_studio", "at Studio"),
           ("delivered", "delivered"), ("rejected", "rejected"), ("failed", "failed"))
"""(WatchFigures field, column title), in the order a photo lives through them. The table fits 80
columns with a watch name of 16 characters; "at Studio" says how many jobs are ahead ("12 (3 ahead)")."""

_ALARM = {"failed": "bold red", "rejected": "yellow"}


def terminal_console(log_format: str, enabled: bool = True, stream=None) -> Console | None:
    """Return a rich Console on stderr (or `stream`) when the live view should be shown there, else None.

    Shown only for text logs on a real terminal that can move its cursor, not
    under systemd (whose journal wants plain lines), and not when turned off.
    """
    stream = sys.stderr if stream is None else stream
    if not enabled or log_format != "text" or under_systemd() or not _isatty(stream):
        return None
    from rich.console import Console
    console = Console(file=stream, markup=False, emoji=False, highlight=False)
    return console if console.is_terminal and not console.is_dumb_terminal else None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def duration(seconds: float) -> str:
    """Return a span for a person: "40 s", "12 min", "2 h 05 min"."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def headline(snapshot: Snapshot, elapsed: float, once: bool) -> str:
    """Return the line over the table: time running, delivered, pace and time left."""
    if not snapshot.started:
        return f"skylab-watch{' --once' if once else ''} · {duration(elapsed)} · starting"
    parts = [f"skylab-watch{' --once' if once else ''}", duration(elapsed),
             f"{snapshot.total('delivered')} delivered"]
    if snapshot.per_minute is not None:
        parts.append(f"{snapshot.per_minute:.1f} photos/min")
    if snapshot.left == 0:
        parts.append("nothing left to do" if once else "all caught up")
    elif snapshot.seconds_left is not None:
        parts.append(f"about {duration(snapshot.seconds_left)} left")
    else:
        parts.append(f"{snapshot.left} on their way")
    return " · ".join(parts)


def render(snapshot: Snapshot, elapsed: float, once: bool = False) -> RenderableType:
    """Return the view of one snapshot: the headline, then a row per watch (and a total of several)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    table = Table(box=None, pad_edge=False, header_style="bold", collapse_padding=True)
    table.add_column("watch", no_wrap=True, overflow="ellipsis", max_width=30)
    for _field, title in COLUMNS:
        table.add_column(title, justify="right", no_wrap=True)
    for watch in snapshot.watches:
        table.add_row(*_cells(watch))
    if len(snapshot.watches) > 1:
        table.add_row(*_cells(_sum(snapshot)), style="bold")
    notes = [Text(f"{printable(w.name)}: {printable(w.paused)}", style="yellow") for w in snapshot.watches if w.paused]
    return Group(Text(headline(snapshot, elapsed, once), style="bold"), table, *notes)


def _cells(watch: WatchFigures) -> list:
    """Return a watch's row: its name (escaped; plain Text, never markup) and its counts."""
    from rich.text import Text
    cells = [Text(printable(watch.name))]
    for name, _title in COLUMNS:
        value = getattr(watch, name)
        shown = str(value)
        if name == "at_studio" and value and watch.jobs_in_front is not None:
            shown += f" ({watch.jobs_in_front} ahead)"
        cells.append(Text(shown, style=_ALARM.get(name, "") if value else "dim"))
    return cells


def _sum(snapshot: Snapshot) -> WatchFigures:
    fronts = [w.jobs_in_front for w in snapshot.watches if w.jobs_in_front is not None]
    return WatchFigures(name="all", settling=snapshot.total("settling"), waiting=snapshot.total("waiting"),
                        uploading=snapshot.total("uploading"), at_studio=snapshot.total("at_studio"),
                        jobs_in_front=min(fronts, default=None), delivered=snapshot.total("delivered"),
                        rejected=snapshot.total("rejected"), failed=snapshot.total("failed"))


class LiveView:
    """The view on screen while the daemon runs; the last frame stays behind when it stops."""

    def __init__(self, console: Console, snapshot: Callable[[], Snapshot], once: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.snapshot = snapshot
        self.once = once
        self.clock = clock
        self.started_at = clock()
        self._live: Live | None = None

    def _frame(self) -> RenderableType:
        return render(self.snapshot(), self.clock() - self.started_at, self.once)

    def start(self) -> None:
        """Start drawing (a thread of rich's redraws the view REFRESH_PER_SECOND times a second)."""
        from rich.live import Live
        # stdout is left alone: it may be a file collecting the summary while the view is on stderr.
        self._live = Live(console=self.console, get_renderable=self._frame, refresh_per_second=REFRESH_PER_SECOND,
                          transient=False, redirect_stdout=False, redirect_stderr=True)
        self._live.start()

    def stop(self) -> None:
        """Draw the last frame and leave it on screen; log lines and the summary continue below it."""
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
