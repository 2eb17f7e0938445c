"""The live view of `skylab-watch run` at a terminal: per-watch progress under the scrolling logs.

`figures` reads where the photos are (on the work loop, one small ledger
query at a time); `view` draws them with rich. Nothing here runs unless
`terminal_console` finds a terminal to draw on.
"""

from skylab_watch.live.figures import Figures, Pace, Snapshot, WatchFigures
from skylab_watch.live.view import LiveView, render, terminal_console

__all__ = ["Figures", "LiveView", "Pace", "Snapshot", "WatchFigures", "render", "terminal_console"]
