"""The morning report in words: plain text for a terminal or an e-mail body, HTML for an e-mail's HTML part.

Both renderings show the same figures (`skylab_watch.report.Report`). Names,
paths, reasons and notice messages come from folders anyone can write into,
so control characters in them are shown escaped (`\\x1b`, `\\u202e`): a file
name can neither move a terminal's cursor nor reorder a line. In HTML every
such text is escaped as well.
"""

from __future__ import annotations

import html
import time

from skylab_watch.printable import printable
from skylab_watch.report import NoticeEntry, Pause, Report, WatchFigures

__all__ = ["render_text", "render_html", "duration", "MAX_LISTED"]

MAX_LISTED = 50
"""Rejections and failures listed per watch; a night of thousands stays a readable e-mail (`--json` and
`status` list every one)."""


def duration(seconds: float | None) -> str:
    """Return `42 s`, `3 min 5 s` or `2 h 10 min`; `-` for None."""
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _clock(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _window(report: Report) -> str:
    return f"{_clock(report.since)} to {_clock(report.until)}"


def _counts_line(w: WatchFigures) -> str:
    """Return `5 found, 4 sent, 3 delivered, 1 rejected, 0 duplicates, 1 failed; 2 jobs (1 failed)`."""
    counts = (f"{w.found} found, {w.sent} sent, {w.delivered} delivered, {w.rejected} rejected, "
              f"{w.duplicates} duplicate(s), {w.failed} failed")
    return f"{counts}; {w.jobs} job(s) ({w.jobs_failed} failed)"


def _timing_line(w: WatchFigures, window: float) -> str:
    """Return `waited: median 12 s, longest 40 s; 180 delivered per hour`.

    Over a window shorter than an hour (a `--once` run) a rate per hour would
    be a guess: the rate is given per minute, with the window's length.
    """
    if w.waited_median is None:
        return "waited: nothing delivered"
    waited = f"waited: median {duration(w.waited_median)}, longest {duration(w.waited_longest)}"
    if window >= 3600:
        return f"{waited}; {w.per_hour:g} delivered per hour"
    return f"{waited}; {w.per_hour / 60:.1f} delivered per minute over {duration(window)}"


def _reason(watch: str, path: str, reason: str) -> str:
    """Return a reason without the `watch: path: ` it starts with when the line already names both."""
    prefix = f"{watch}: {path}: "
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def _notice_line(n: NoticeEntry) -> str:
    """Return one notice as `<message> (raised 01:10, cleared 01:40)` or `(raised 01:10, still standing)`."""
    end = f"cleared {_clock(n.cleared_at)}" if n.cleared_at else "still standing"
    return f"{n.message} (raised {_clock(n.raised_at)}, {end})"


def _pause_line(watch: str, p: Pause) -> str:
    """Return `paused by hand since 2026-11-25 01:10: <reason> (skylab-watch resume W)` or the share's notice."""
    if p.by == "hand":
        return f"paused by hand since {_clock(p.since)}: {p.reason} (skylab-watch resume {watch} lifts it)"
    return f"{p.reason} (since {_clock(p.since)}; it resumes when the folder is back)"


def render_text(report: Report) -> str:
    """Given a Report, return it as plain text: a heading, a block per watch, then the notices."""
    lines = [f"skylab-watch report, {_window(report)}",
             f"total: {report.total('delivered')} delivered, {report.total('rejected')} rejected, "
             f"{report.total('failed')} failed"]
    for w in report.watches:
        lines += ["", f"{printable(w.name)}: {_counts_line(w)}", f"  {_timing_line(w, report.until - report.since)}"]
        lines += [f"  {printable(_pause_line(w.name, p))}" for p in w.paused]
        for p in w.problems[:MAX_LISTED]:
            lines.append(f"  {p.state}: {printable(p.path)}: {printable(_reason(p.watch, p.path, p.reason))}")
        if len(w.problems) > MAX_LISTED:
            lines.append(f"  {_more(w)}")
    if not report.watches:
        lines += ["", "No watch did anything in this window."]
    if report.notices:
        lines += ["", "Notices:"]
        lines += [f"  {printable(_notice_line(n))}" for n in report.notices]
    return "\n".join(lines)


def _h(text: str) -> str:
    """Escape a text from the ledger for HTML, control characters first."""
    return html.escape(printable(text), quote=True)


_CELL = 'style="padding:2px 8px;border:1px solid #ccc;text-align:right"'
_HEAD = 'style="padding:2px 8px;border:1px solid #ccc;text-align:left"'
_COLUMNS = ("found", "sent", "delivered", "rejected", "duplicates", "failed", "jobs", "jobs failed",
            "median wait", "longest wait", "per hour")


def _row(w: WatchFigures) -> str:
    values = [w.found, w.sent, w.delivered, w.rejected, w.duplicates, w.failed, w.jobs, w.jobs_failed,
              duration(w.waited_median), duration(w.waited_longest), f"{w.per_hour:g}"]
    cells = "".join(f"<td {_CELL}>{_h(str(v))}</td>" for v in values)
    return f"<tr><th {_HEAD}>{_h(w.name)}</th>{cells}</tr>"


def _problem_items(w: WatchFigures) -> str:
    """Return the `<li>` of each rejection and failure of a watch (at most MAX_LISTED, then how many more)."""
    items = [f"<li>{_h(p.watch)}: {_h(p.state)}: <code>{_h(p.path)}</code>: "
             f"{_h(_reason(p.watch, p.path, p.reason))}</li>" for p in w.problems[:MAX_LISTED]]
    if len(w.problems) > MAX_LISTED:
        items.append(f"<li>{_h(w.name)}: {_h(_more(w))}</li>")
    return "".join(items)


def _more(w: WatchFigures) -> str:
    return f"... and {len(w.problems) - MAX_LISTED} more (`skylab-watch status` or `report --json` lists every one)"


def render_html(report: Report) -> str:
    """Given a Report, return an HTML fragment (for an e-mail's HTML part) with the same figures as the text."""
    head = "".join(f"<th {_HEAD}>{c}</th>" for c in ("watch", *_COLUMNS))
    parts = [f"<h2>skylab-watch report, {_h(_window(report))}</h2>",
             f"<p>total: {report.total('delivered')} delivered, {report.total('rejected')} rejected, "
             f"{report.total('failed')} failed</p>",
             f'<table style="border-collapse:collapse"><tr>{head}</tr>',
             *(_row(w) for w in report.watches), "</table>"]
    paused = "".join(f"<li>{_h(w.name)}: {_h(_pause_line(w.name, p))}</li>" for w in report.watches for p in w.paused)
    if paused:
        parts.append(f"<h3>Paused</h3><ul>{paused}</ul>")
    if report.problems:
        parts.append(f"<h3>Rejected and failed</h3><ul>{''.join(_problem_items(w) for w in report.watches)}</ul>")
    if report.notices:
        items = "".join(f"<li>{_h(_notice_line(n))}</li>" for n in report.notices)
        parts.append(f"<h3>Notices</h3><ul>{items}</ul>")
    return "\n".join(parts)
