"""The status report: what the ledger knows, per watch, in words and as JSON.

Read-only and independent of the running daemon: it opens the ledger file
(WAL lets it read while the daemon writes) and reports counts, open jobs,
conditions (paused watches, no credits) and every failure with its reason.
"""

from __future__ import annotations

import time
from typing import Any

from skylab_watch.ledger import Job, Ledger, PhotoState
from skylab_watch.ledger.states import JOB_OPEN_STATES, REPORT_CATEGORIES, REPORT_CATEGORY
from skylab_watch.printable import printable

# Report categories, in the order a photo lives through them.
CATEGORIES = REPORT_CATEGORIES


def _category(photo_state: str, studio_status: str | None) -> str | None:
    """The state's category (states.REPORT_CATEGORY); a queued photo Studio has started on is processing."""
    if photo_state == PhotoState.QUEUED and studio_status in ("processing", "completed"):
        return "processing"
    return REPORT_CATEGORY[PhotoState(photo_state)]


def build_report(ledger: Ledger, watches: list[str] | None = None) -> dict[str, Any]:
    """Given a ledger, return the status report as plain data (what `--json` prints)."""
    report: dict[str, Any] = {"watches": {}, "jobs": [], "problems": [], "notices": []}
    for name in watches or []:
        report["watches"][name] = dict.fromkeys(CATEGORIES, 0)
    for row in ledger.count_photos_by_state():
        counts = report["watches"].setdefault(row.watch, dict.fromkeys(CATEGORIES, 0))
        category = _category(row.state, row.studio_status)
        if category:
            counts[category] += row.count
    report["jobs"] = [_job_entry(ledger, job) for job in ledger.jobs_in_state(*JOB_OPEN_STATES)]
    report["problems"] = [
        {"watch": p.watch, "path": p.rel_path, "state": p.state, "reason": p.reason,
         "since": _iso(p.updated_at)}
        for p in ledger.photos_in_state(PhotoState.REJECTED, PhotoState.FAILED, PhotoState.DUPLICATE)]
    report["notices"] = [{"key": key, "message": msg, "since": _iso(since)}
                         for key, (msg, since) in sorted(ledger.notices().items())]
    return report


def _job_entry(ledger: Ledger, job: Job) -> dict[str, Any]:
    return {"watch": job.watch, "name": job.name, "state": job.state, "studio_id": job.studio_id,
            "studio_status": job.studio_status, "jobs_in_front": job.jobs_in_front,
            "photos": ledger.count_job_photos(job.id), "opened": _iso(job.opened_at)}


def _iso(ts: float | None) -> str | None:
    return None if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def format_report(report: dict[str, Any]) -> str:
    """Return the report as text for a person.

    Every name and reason goes through `printable`: a file name may hold a
    newline (which would forge a row of this report) or a terminal escape
    sequence, and a reason quotes names. JSON needs none of this: `json`
    escapes control characters itself.
    """
    lines = []
    for notice in report["notices"]:
        lines.append(f"! {printable(notice['message'])} (since {notice['since']})")
    for watch, counts in sorted(report["watches"].items()):
        parts = ", ".join(f"{counts[c]} {c}" for c in CATEGORIES)
        lines.append(f"{printable(watch)}: {parts}")
    if report["jobs"]:
        lines.append("")
        lines.append("Open jobs:")
        for job in report["jobs"]:
            front = f", {job['jobs_in_front']} job(s) in front" if job["jobs_in_front"] else ""
            studio = f" (Studio: {printable(job['studio_status'])}{front})" if job["studio_status"] else ""
            lines.append(f"  {printable(job['watch'])}: {printable(job['name'])}: {job['state']}, "
                         f"{job['photos']} photo(s){studio}")
    if report["problems"]:
        lines.append("")
        lines.append("Not sent, or failed:")
        for p in report["problems"]:
            lines.append(f"  {printable(p['watch'])}: {printable(p['path'])}: {p['state']}: "
                         f"{printable(p['reason'] or '')}")
    return "\n".join(lines) if lines else "The ledger is empty: no photo seen yet."
