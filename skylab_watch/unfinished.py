"""What `run --once` still waits for, counted from the ledger, in one sentence for a person;
and the exit codes `run --once` ends with.

Only watches in the running configuration count: photos and jobs of a watch
removed from the config are left in the ledger but never waited on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterable

from skylab_watch.ledger import JobState, Ledger, PhotoState
from skylab_watch.ledger.states import AT_STUDIO_STATES

# The exit codes of `skylab-watch run` (README, "Commands"; `run --help`). Kept stable: scripts rely on them.
EXIT_DONE = 0
"""--once: everything found was delivered (or was a duplicate). Without --once: a requested stop."""
EXIT_FAILED = 1
"""--once: a photo failed, a watch's input could not be read, or --timeout ran out with work unfinished."""
EXIT_REFUSED = 2
"""The config is refused, Studio refused the key, or another daemon holds the ledger."""
EXIT_REJECTED = 3
"""--once: done, nothing failed, but some files were rejected (not photos Studio accepts; see the summary)."""

EXIT_CODES_HELP = """exit codes:
  0  done: everything found was delivered (with --once), or a requested stop (SIGTERM, Ctrl-C)
  1  with --once: a photo failed, an input folder could not be read, or --timeout ran out
  2  the config is refused, Studio refused the API key, or another daemon holds the ledger
  3  with --once: done and nothing failed, but some files were rejected (the summary names them)"""

EXIT_MEANINGS = {EXIT_DONE: "all done", EXIT_FAILED: "something failed or is unfinished",
                 EXIT_REFUSED: "refused to run", EXIT_REJECTED: "done, but some files were rejected"}


def once_exit_code(loop_code: int, rejected: int, stopped: bool) -> int:
    """Given the work loop's code, how many files this run rejected and whether a stop was requested,
    return the exit code of `run --once`.

    A failure (1) outranks rejections; a requested stop keeps its own code,
    since the run did not get to its end.
    """
    if loop_code == EXIT_DONE and rejected and not stopped:
        return EXIT_REJECTED
    return loop_code


TO_SEND_STATES = (PhotoState.READY, PhotoState.BATCHED, PhotoState.UPLOADING, PhotoState.UPLOADED)
# Jobs not yet queued at Studio (`creating`: a create call whose outcome is still to be looked up).
JOBS_NOT_YET_QUEUED = (JobState.CLOSED, JobState.CREATING, JobState.CREATED, JobState.QUEUEING)


@dataclass
class Unfinished:
    """Counts of the work not finished yet; all zero (and no names) means nothing is left."""

    settling: int = 0
    to_send: int = 0
    at_studio: int = 0
    studio_jobs: int = 0
    oldest_queued_at: float | None = None
    jobs_to_queue: int = 0
    transfers: int = 0
    unscanned: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.settling or self.to_send or self.at_studio or self.jobs_to_queue
                    or self.transfers or self.unscanned)

    def describe(self) -> str:
        """Return e.g. "12 photo(s) at Studio in 2 job(s), oldest queued since 01:12; 3 file(s) still settling"."""
        parts = []
        if self.at_studio:
            part = f"{self.at_studio} photo(s) at Studio in {self.studio_jobs} job(s)"
            if self.oldest_queued_at is not None:
                part += f", oldest queued since {clock_time(self.oldest_queued_at)}"
            parts.append(part)
        if self.to_send:
            parts.append(f"{self.to_send} photo(s) still to send")
        if self.jobs_to_queue:
            parts.append(f"{self.jobs_to_queue} job(s) not yet queued at Studio")
        if self.transfers and not (self.to_send or self.at_studio):
            parts.append(f"{self.transfers} transfer(s) finishing")
        if self.settling:
            parts.append(f"{self.settling} file(s) still settling")
        if self.unscanned:
            parts.append(f"the first scan of {', '.join(self.unscanned)}")
        return "; ".join(parts) or "nothing"


def count_unfinished(ledger: Ledger, watches: Iterable[str], settling: int = 0, transfers: int = 0,
                     unscanned: Iterable[str] = ()) -> Unfinished:
    """Given the configured watch names and what lives only in memory, return the unfinished work.

    settling: files noticed but not settled yet; transfers: uploads and
    deliveries submitted and not yet looked at; unscanned: watches whose
    first scan has not run.
    """
    names = set(watches)
    to_send = [p for p in ledger.photos_in_state(*TO_SEND_STATES) if p.watch in names]
    at_studio = [p for p in ledger.photos_in_state(*AT_STUDIO_STATES) if p.watch in names]
    job_ids = {p.job_id for p in at_studio if p.job_id is not None}
    queued_at = [j.queued_at for j in (ledger.get_job(i) for i in job_ids) if j is not None and j.queued_at]
    open_jobs = [j for j in ledger.jobs_in_state(*JOBS_NOT_YET_QUEUED) if j.watch in names]
    return Unfinished(settling=settling, to_send=len(to_send), at_studio=len(at_studio),
                      studio_jobs=len(job_ids), oldest_queued_at=min(queued_at, default=None),
                      jobs_to_queue=len(open_jobs), transfers=transfers, unscanned=sorted(unscanned))


def clock_time(timestamp: float, now: float | None = None) -> str:
    """Return local "HH:MM" for today's times, "YYYY-MM-DD HH:MM" for older ones."""
    moment, today = time.localtime(timestamp), time.localtime(now if now is not None else time.time())
    same_day = moment.tm_yday == today.tm_yday and moment.tm_year == today.tm_year
    return time.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M", moment)
