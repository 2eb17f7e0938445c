"""The status page `/`: plain server-rendered HTML of `skylab-watch status`, for people and phones.

No template engine, no script, no external asset: strings built here, inline
CSS, a viewport meta so a phone shows it at its own width, and a meta refresh
so a page left open on a studio screen keeps itself current. Every figure
comes from `status.build_report` (the data of `status --json`) and, for the
throughput, from the morning report's figures over the last hour
(`report.build_report`): the page computes nothing of its own.

Every name, path and reason read from the ledger goes through `printable`
(control characters, bidirectional overrides and undecodable bytes made
visible) and then `html.escape`: a file named `<script>.jpg` is text here,
never markup.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote

from skylab_watch.pipeline.context import CREDITS_NOTICE
from skylab_watch.printable import printable
from skylab_watch.status import CATEGORIES
from skylab_watch.web_session import CSRF_FIELD, TOKEN_FIELD

__all__ = ["PageView", "REFRESH_SECONDS", "SHOWN_PROBLEMS", "render_message", "render_page", "render_sign_in"]

REFRESH_SECONDS = 10
"""How often an open page reloads itself."""
SHOWN_PROBLEMS = 50
"""The newest failures and rejections shown; `skylab-watch status` lists them all."""
IN_PROGRESS = ("waiting", "uploading", "queued", "processing")
HOLDING_NOTICES = (CREDITS_NOTICE,)
"""Daemon-wide notices that hold every watch's work while they stand (out of credits: nothing is sent)."""

_CSS = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f1;color:#222}
header,main{max-width:60rem;margin:auto;padding:.5rem 1rem}
header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:baseline;justify-content:space-between}
h1{font-size:1.3rem;margin:.3rem 0}h2{font-size:1.1rem;margin:1.2rem 0 .4rem}
.card{background:#fff;border-radius:8px;padding:.6rem .8rem;margin:.5rem 0;box-shadow:0 1px 2px #0002}
.state{font-weight:600;padding:0 .4rem;border-radius:4px;background:#e4efe4}
.state.paused{background:#fbe3c4}.state.idle{background:#eee}
dl.counts{display:grid;grid-template-columns:repeat(auto-fill,minmax(6.5rem,1fr));gap:.2rem .8rem;margin:.4rem 0}
dl.counts div{display:flex;justify-content:space-between}dt{color:#666}dd{margin:0;font-weight:600}
.actions{display:flex;flex-wrap:wrap;gap:.4rem}.actions form{margin:0}
button{font:inherit;padding:.45rem .9rem;border-radius:6px;border:1px solid #888;background:#fafafa}
.notice{background:#fff3cd;border-left:4px solid #d9a400}.problem .path{font-family:monospace;word-break:break-all}
.failed{border-left:4px solid #c0392b}.rejected{border-left:4px solid #888}
.muted{color:#666;font-size:.9em}input[type=password]{font:inherit;padding:.4rem;width:100%;max-width:22rem;box-sizing:border-box}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25rem .4rem;border-bottom:1px solid #ddd}
.scroll{overflow-x:auto}#problems{padding:0;list-style:none}
"""


@dataclass(frozen=True)
class PageView:
    """What one rendering of the page shows.

    status: `status.build_report(...)`; hourly: {watch: (delivered in the last
    hour, per hour)}; csrf: the form field of a signed-in browser, None when
    not signed in (the action buttons are then replaced by the sign-in form).
    """

    status: dict[str, Any]
    hourly: dict[str, tuple[int, float]] = field(default_factory=dict)
    csrf: str | None = None
    generated: str = ""


def text(value: object) -> str:
    """Return `value` safe to put into HTML text or a quoted attribute: printable, then escaped."""
    return html.escape(printable(str(value)), quote=True)


def render_page(view: PageView) -> bytes:
    """Return the whole status page as UTF-8 HTML."""
    status = view.status
    parts = [_notices(status), "<h2>Watches</h2>"]
    parts += [_watch(name, counts, status, view) for name, counts in sorted(status["watches"].items())]
    parts += [_jobs(status["jobs"]), _problems(status["problems"])]
    if view.csrf is None:
        parts.append(_sign_in_form("Sign in with the HTTP token to retry, pause or resume a watch."))
    else:
        parts.append(_sign_out_form())
    return _document("skylab-watch", "".join(parts), refresh=True, generated=view.generated)


def render_sign_in(message: str, failed: bool = False) -> bytes:
    """Return the page that shows only the sign-in form (off loopback, before signing in)."""
    note = '<p class="notice card">That token is not right.</p>' if failed else ""
    return _document("skylab-watch: sign in", note + _sign_in_form(message), refresh=False)


def render_message(title: str, message: str) -> bytes:
    """Return a short page saying `message` with a way back to the status page."""
    body = f'<section class="card"><p>{text(message)}</p><p><a href="/">Back to the status page</a></p></section>'
    return _document(title, body, refresh=False)


def _document(title: str, body: str, refresh: bool, generated: str = "") -> bytes:
    meta = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if refresh else ""
    stamp = f'<span class="muted">as of {text(generated)}</span>' if generated else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{meta}<title>{text(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{text(title)}</h1>{stamp}</header><main>{body}</main></body></html>"
    ).encode()


def _notices(status: dict[str, Any]) -> str:
    items = [f'<li>{text(n["message"])} <span class="muted">since {text(n["since"])}</span></li>'
             for n in status["notices"]]
    if not items:
        return ""
    return f'<section class="card notice" id="notices"><h2>Notices</h2><ul>{"".join(items)}</ul></section>'


def paused_by_hand(name: str, status: dict[str, Any]) -> dict[str, Any] | None:
    """Return the `status["paused"]` entry of watch `name` (paused with `pause`), or None."""
    return next((paused for paused in status["paused"] if paused["watch"] == name), None)


def watch_state(name: str, counts: dict[str, int], status: dict[str, Any]) -> tuple[str, str]:
    """Return (css class, words) for a watch: paused and why, held by a daemon-wide notice, working, or idle."""
    paused = paused_by_hand(name, status)
    if paused is not None:
        return "paused", f"paused by hand since {paused['since']}: {paused['reason']}"
    for notice in status["notices"]:
        if notice["key"] == f"watch:{name}":
            return "paused", f"paused since {notice['since']}: {notice['message']}"
    for notice in status["notices"]:
        if notice["key"] in HOLDING_NOTICES:
            return "paused", f"held since {notice['since']}: {notice['message']}"
    if any(counts.get(c, 0) for c in IN_PROGRESS):
        return "working", "working"
    return "idle", "idle"


def _watch(name: str, counts: dict[str, int], status: dict[str, Any], view: PageView) -> str:
    css, words = watch_state(name, counts, status)
    cells = "".join(f'<div><dt>{c}</dt><dd data-count="{c}">{int(counts.get(c, 0))}</dd></div>'
                    for c in CATEGORIES)
    delivered, per_hour = view.hourly.get(name, (0, 0.0))
    front = [j["jobs_in_front"] for j in status["jobs"] if j["watch"] == name and j["jobs_in_front"]]
    queue = f" · {max(front)} job(s) in front at Studio" if front else ""
    return (f'<section class="card watch" data-watch="{text(name)}"><h3>{text(name)} '
            f'<span class="state {css}">{text(words)}</span></h3>'
            f'<dl class="counts">{cells}</dl>'
            f'<p class="throughput muted">{delivered} delivered in the last hour ({per_hour:g} an hour){queue}</p>'
            f"{_actions(name, view.csrf, _useful_actions(name, counts, status))}</section>")


def _useful_actions(name: str, counts: dict[str, int], status: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the (action, label) pairs that would do something: retry only with failed photos, pause or resume."""
    useful = [("retry", "Retry failed")] if counts.get("failed", 0) else []
    useful.append(("resume", "Resume") if paused_by_hand(name, status) is not None else ("pause", "Pause"))
    return useful


def _actions(name: str, csrf: str | None, actions: list[tuple[str, str]]) -> str:
    """The watch's buttons, each its own POST form carrying the CSRF field; none when not signed in."""
    if csrf is None:
        return ""
    forms = []
    for action, label in actions:
        forms.append(f'<form method="post" action="/watches/{text(quote(name, safe=""))}/{action}">'
                     f'<input type="hidden" name="{CSRF_FIELD}" value="{text(csrf)}">'
                     f'<button type="submit" data-action="{action}">{label}</button></form>')
    return f'<div class="actions">{"".join(forms)}</div>'


def _jobs(jobs: Iterable[dict[str, Any]]) -> str:
    rows = []
    for job in jobs:
        front = job["jobs_in_front"] if job["jobs_in_front"] is not None else ""
        rows.append(f'<tr><td>{text(job["watch"])}</td><td>{text(job["name"])}</td><td>{text(job["state"])}</td>'
                    f'<td>{text(job["studio_status"] or "")}</td><td>{int(job["photos"])}</td>'
                    f"<td>{text(front)}</td></tr>")
    if not rows:
        return '<h2>Jobs at Studio</h2><p class="muted">No job open.</p>'
    head = "<tr><th>watch</th><th>job</th><th>state</th><th>Studio</th><th>photos</th><th>jobs in front</th></tr>"
    return f'<h2>Jobs at Studio</h2><div class="scroll card"><table id="jobs">{head}{"".join(rows)}</table></div>'


def _problems(problems: list[dict[str, Any]]) -> str:
    """The newest failures and rejections, newest first, each with its watch, path and reason."""
    shown = [p for p in problems if p["state"] in ("failed", "rejected")]
    shown.sort(key=lambda p: p["since"] or "", reverse=True)
    if not shown:
        return '<h2>Failures and rejections</h2><p class="muted">None.</p>'
    items = [f'<li class="card problem {text(p["state"])}"><b>{text(p["state"])}</b> '
             f'{text(p["watch"])}: <span class="path">{text(p["path"])}</span><br>'
             f'<span class="reason">{text(own_reason(p) or "no reason recorded")}</span> '
             f'<span class="muted">{text(p["since"])}</span></li>' for p in shown[:SHOWN_PROBLEMS]]
    more = len(shown) - SHOWN_PROBLEMS
    tail = f'<p class="muted">{more} older: see skylab-watch status.</p>' if more > 0 else ""
    return f'<h2>Failures and rejections</h2><ul id="problems">' \
           f'{"".join(items)}</ul>{tail}'


def own_reason(problem: dict[str, Any]) -> str:
    """Return a problem's reason without the leading "watch: path: " its line already shows."""
    reason = problem["reason"] or ""
    prefix = f'{problem["watch"]}: {problem["path"]}: '
    return reason[len(prefix):] if reason.startswith(prefix) else reason


def _sign_in_form(message: str) -> str:
    return (f'<section class="card" id="sign-in"><p>{text(message)}</p>'
            '<form method="post" action="/session"><label>Token<br>'
            f'<input type="password" name="{TOKEN_FIELD}" autocomplete="current-password" required></label> '
            '<button type="submit">Sign in</button></form></section>')


def _sign_out_form() -> str:
    return ('<form method="post" action="/session/end" id="sign-out">'
            '<button type="submit">Sign out</button></form>')
