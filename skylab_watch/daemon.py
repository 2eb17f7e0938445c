"""The reconciler: one loop that reads the ledger, does the next step for
whatever is due, and hands slow work to worker pools.

Watchers only report, workers only do one step and record it. After a crash
the same loop started on the same ledger simply carries on: recovery is the
first pass of the loop, not a special mode.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from skylab_watch.config import Config, load_config, resolve_profiles
from skylab_watch.errors import ConfigError
from skylab_watch.ledger import Job, JobState, Ledger, PhotoState
from skylab_watch.ledger.states import AT_STUDIO_STATES, REPORT_CATEGORIES, REPORT_CATEGORY
from skylab_watch.notify import Notifications
from skylab_watch.pipeline import batcher, completion, jobs
from skylab_watch.pipeline.context import Context, CreditGate
from skylab_watch.pipeline.discovery import WatchDiscovery
from skylab_watch.pipeline.failures import apply_daemon_wide, job_step_failed
from skylab_watch.pipeline.inspections import Inspections
from skylab_watch.pipeline.outcomes import STOP_THE_PASS, classify
from skylab_watch.pipeline.pauses import HandPauses
from skylab_watch.pipeline.uploads import Uploads
from skylab_watch.studio import StudioClient, StudioError
from skylab_watch.unfinished import TO_SEND_STATES, Unfinished, count_unfinished

if TYPE_CHECKING:  # imported where they start: a daemon without http or callback never loads the web stack
    from skylab_watch.callbacks import CallbackReceiver
    from skylab_watch.http_surface import HttpSurface

log = logging.getLogger("skylab_watch")

TICK_SECONDS = 0.2
MIN_TICK_SECONDS = 0.01
"""The shortest sleep between passes: when a settling file is due sooner than TICK_SECONDS, the loop wakes
for it then (down to this), so a photo is checked as soon as its settle time is up, not up to a tick later."""
IDLE_TICK_SECONDS = 1.0
"""Between passes the loop sleeps TICK_SECONDS, or this long once nothing is in progress: a new
file, a callback, a finished transfer or a signal still wake it at once, only timers (a rescan, a daily
report) wait up to a second. Five idle passes a second were most of an idle daemon's own CPU."""
STOP_GRACE_SECONDS = 20.0
"""On a stop, how long transfers in flight may finish before they are abandoned
(README, unit, systemd/README say 20 s)."""
WAIT_REPORT_SECONDS = 30.0
"""How often `run --once` says what it still waits for."""


class Daemon:
    """The running daemon over one ledger and one Studio account."""

    def __init__(self, config: Config, ledger: Ledger, studio: StudioClient, profiles: dict[str, int],
                 once: bool = False, staging_dir: Path | None = None) -> None:
        self.ctx = Context(config=config, ledger=ledger, studio=studio, profiles=profiles,
                           credits=CreditGate(ledger, config.credits_retry_seconds),
                           staging_dir=staging_dir or ledger.path.parent / "staging",
                           give_up_seconds=config.retry.give_up_after_hours * 3600.0)
        self.once = once
        self._started_config = config
        self.events: queue.Queue[tuple[str, str]] = queue.Queue()
        self.discoveries: dict[str, WatchDiscovery] = {}
        self.stopping = threading.Event()
        self.wakeup = threading.Event()
        self.heartbeat = time.monotonic()
        self.started_at = time.time()
        self._uploads = Uploads(self.ctx, config.upload_concurrency, self._may_work_on, on_low=self.wakeup.set)
        self._deliveries = completion.Deliveries(self.ctx)
        self.inspections = Inspections(self.ctx, on_done=self.wakeup.set)
        self.callbacks: CallbackReceiver | None = None
        self.http: HttpSurface | None = None
        self._reload_requested = threading.Event()
        self.stall_seconds = 60.0
        self.on_loop: Callable[[Daemon], None] | None = None
        self._pauses = HandPauses(ledger)
        self.notifications = Notifications(config.notify, ledger, once, self.health_problem, report=config.report,
                                           watches=[w.name for w in config.watches])
        self.result: int | None = None

    # ------------------------------------------------------------------ life cycle

    def start(self) -> int:
        """Start observers and scan every input tree; after this the daemon is ready.

        Returns how many new or changed files the start-up scans found.
        """
        found = sum(self._add_watch(watch) for watch in self.ctx.config.watches)
        self._start_callbacks()
        self.notifications.start()
        log.info("skylab-watch is watching %d folder(s); ledger %s; %d new file(s) found at start",
                 len(self.discoveries), self.ctx.ledger.path, found)
        return found

    def _add_watch(self, watch) -> int:
        disc = WatchDiscovery(watch, self.ctx.ledger, self.events)
        self.discoveries[watch.name] = disc
        return disc.start()

    def _start_callbacks(self) -> None:
        """Start the callback receiver and the HTTP surface, as configured.

        They share one server when http is set and callback.listen equals http.listen: the callback's PATCH
        route joins the surface (without its token rule: Studio proves itself with the HMAC signature).
        Otherwise the callback keeps a server of its own, as before http existed.
        """
        cb, http = self.ctx.config.callback, self.ctx.config.http
        shared = cb is not None and http is not None and cb.listen == http.listen
        if cb is not None:
            from skylab_watch.callbacks import CallbackReceiver
            self.callbacks = CallbackReceiver(cb.host, cb.port, cb.secret, on_job=self._on_callback, path=cb.path,
                                              first_sight=self.ctx.ledger.first_sight_of_callback,
                                              own_server=not shared)
        if http is not None:
            from skylab_watch.http_surface import HttpSurface
            extra = [self.callbacks.route] if shared and self.callbacks is not None else []
            self.http = HttpSurface(http, self.ctx.ledger, [w.name for w in self.ctx.config.watches],
                                    loop_age=lambda: time.monotonic() - self.heartbeat, extra=extra,
                                    telemetry=self.ctx.telemetry)
            self.http.start()
        if self.callbacks is not None:
            self.callbacks.start()

    def _on_callback(self, studio_job_id: int | None) -> None:
        self._deliveries.poke(studio_job_id)
        self.wakeup.set()

    def stop(self) -> None:
        """Ask the loop to stop after the current pass."""
        self.stopping.set()
        self.wakeup.set()

    def shutdown(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop taking work, give transfers in flight the grace, then abandon what is left.

        An abandoned transfer is recorded as in progress (its intent), so the
        next start finishes or redoes it. Its thread is a daemon thread: it
        never holds up the exit of the process.
        """
        deadline = time.monotonic() + grace_seconds
        self._uploads.close()
        self._deliveries.close()
        self.inspections.close()
        for disc in self.discoveries.values():
            disc.stop()
        if self.callbacks is not None:
            self.callbacks.stop()
        if self.http is not None:
            self.http.stop()
        uploads = self._uploads.shutdown(max(0.0, deadline - time.monotonic()))
        self._guard(self._reap_uploads)  # uploads that finished within the grace are recorded, not redone
        deliveries = self._deliveries.shutdown(max(0.0, deadline - time.monotonic()))
        if uploads or deliveries:
            log.warning("stopping with %d upload(s) and %d download(s) still running after the %g s grace: %s; "
                        "the ledger records them as in progress and the next start redoes them",
                        len(uploads), len(deliveries), grace_seconds,
                        ", ".join(self._describe(i) for i in [*uploads, *deliveries][:10]))
        self._guard(lambda: self.notifications.close(self.result, self._end_summary()))

    def _end_summary(self) -> str:
        """Say in a line how the run ended (the body of the last health ping of `run --once`)."""
        failed = [p for p in self.ctx.ledger.photos_in_state(PhotoState.FAILED) if p.updated_at >= self.started_at]
        rejected = [p for p in self.ctx.ledger.photos_in_state(PhotoState.REJECTED) if p.found_at >= self.started_at]
        left = self.unfinished()
        return (f"{len(failed)} photo(s) failed, {len(rejected)} file(s) rejected"
                + (f"; unfinished: {left.describe()}" if left else ""))

    def run(self, timeout: float | None = None) -> int:
        """Loop until stopped (or, with once, until everything found is finished); return the exit code.

        timeout (with once): give up after this many seconds, naming what is
        unfinished, and return 1.
        """
        self.result = self._loop(timeout)
        return self.result

    def _loop(self, timeout: float | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        next_report = time.monotonic() + WAIT_REPORT_SECONDS
        while not self.stopping.is_set():
            self._guard(self.step)
            if self.once:
                if self.finished():
                    break
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    log.error("giving up after %g s (--timeout): still unfinished: %s", timeout,
                              self.unfinished().describe())
                    return 1
                if now >= next_report:
                    log.info("waiting for %s", self.unfinished().describe())
                    next_report = now + WAIT_REPORT_SECONDS
            self.wakeup.wait(self._between_passes())
            self.wakeup.clear()
        return self.exit_code()

    def _between_passes(self) -> float:
        """How long to sleep before the next pass unless woken: longer once nothing is in progress, but
        always well inside the stall limit the watchdog judges the loop by (its heartbeat is per pass)."""
        if not self._quiet():
            due = [d.seconds_to_next_settle() for d in self.discoveries.values()]
            soonest = min((s for s in due if s is not None), default=TICK_SECONDS)
            return max(MIN_TICK_SECONDS, min(TICK_SECONDS, soonest))  # a file settles: look at it then
        return max(TICK_SECONDS, min(IDLE_TICK_SECONDS, self.stall_seconds / 4))

    def _quiet(self) -> bool:
        """True when nothing is in progress: nothing settling, checked or transferred in memory, and no photo
        in the ledger still to send or at Studio. Cheap on purpose (one indexed look at the ledger): it is
        asked after every pass, also on a night with thousands of photos waiting at Studio."""
        return self._idle_in_memory(self.discoveries.values()) \
            and not self.ctx.ledger.has_photos_in_state(*TO_SEND_STATES, *AT_STUDIO_STATES)

    def _idle_in_memory(self, watches: Iterable[WatchDiscovery]) -> bool:
        """True when no file of `watches` is settling and nothing is queued, checked or transferred."""
        return not (any(d.pending() for d in watches) or not self.events.empty() or self.inspections.busy()
                    or self._uploads.busy() or self._deliveries.busy())

    def exit_code(self) -> int:
        """Return the process's exit code once the loop has ended.

        The service (no once) ends only when asked to stop: 0, whatever
        happened to photos (they are in `status`; a non-zero code would make
        systemd mark the unit failed). With once: 1 if any photo found since
        start has failed or a watch could not be read, else 0.
        """
        if not self.once:
            return 0
        paused = [d.name for d in self.discoveries.values() if d.paused_reason]
        if paused:
            log.error("could not read the input of %s: nothing there was processed", ", ".join(paused))
            return 1
        failed = [p for p in self.ctx.ledger.photos_in_state(PhotoState.FAILED) if p.updated_at >= self.started_at]
        return 1 if failed else 0

    def _describe(self, photo_id: int) -> str:
        """Name a photo in a log line by its watch and path (`packshots: s1/IMG_1.jpg`)."""
        photo = self.ctx.ledger.get_photo(photo_id)
        return f"{photo.watch}: {photo.rel_path}" if photo else f"photo row {photo_id}"

    # ------------------------------------------------------------------ one pass

    def step(self) -> None:
        """One pass of the reconciler over every watch and every job."""
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            self._guard(self.reload)
        self.ctx.held_watches = self._pauses.refresh()
        self._discover()
        self.ctx.paused_watches = {d.name for d in self.discoveries.values() if d.paused_reason}
        for disc in self.discoveries.values():
            if disc.name in self.ctx.held_watches:
                continue
            self._guard(functools.partial(batcher.batch_ready_photos, self.ctx, disc.config))
            self._guard(functools.partial(self._close_due_jobs, disc))
        self._guard(self._reap_uploads)
        if self.ctx.health.ready():
            self._guard(self._create_jobs)
            self._guard(self._submit_uploads)
            self._guard(self._queue_jobs)
            self._guard(lambda: self._deliveries.step(self.wakeup))
        self._guard(self.notifications.on_pass)
        self.heartbeat = time.monotonic()
        if self.on_loop:
            self.on_loop(self)

    def _discover(self) -> None:
        while True:
            try:
                name, rel = self.events.get_nowait()
            except queue.Empty:
                break
            if name in self.discoveries:
                self._guard(functools.partial(self.discoveries[name].note_event, rel))
        for disc in list(self.discoveries.values()):
            self._guard(functools.partial(self._discover_watch, disc))
        self._guard(self.inspections.step)
        for disc in list(self.discoveries.values()):  # after step(): the checks it reaped make room
            if disc.name not in self.ctx.held_watches:
                self._guard(functools.partial(self.inspections.look_ahead, disc.config, disc.steady(),
                                              settling=disc.tracker))

    def _discover_watch(self, disc: WatchDiscovery) -> None:
        disc.check_root()
        disc.keep_observer_alive()
        disc.rescan_if_due()
        if disc.name in self.ctx.held_watches:
            return  # files keep settling in memory; they are taken in once the watch is resumed
        for stat in disc.settled(proven=functools.partial(self.inspections.proven, disc.name)):
            self.inspections.submit(disc.config, stat)  # checked on the inspection pool, never on this thread

    def _close_due_jobs(self, disc: WatchDiscovery) -> None:
        batcher.close_due_jobs(self.ctx, disc.config, self._nothing_pending(disc))

    def _nothing_pending(self, disc: WatchDiscovery) -> bool:
        return (self.once and disc.scanned and disc.pending() == 0 and self.events.empty()
                and self.inspections.pending(disc.name) == 0)

    def _create_jobs(self) -> None:
        """Create jobs at Studio as soon as they hold a photo (open or closed), so uploads start at once;
        one job's refusal fails that job only, never the others."""
        if self.ctx.credits.is_open():
            due = [j for j in self.ctx.ledger.jobs_in_state(JobState.OPEN, JobState.CLOSED, JobState.CREATING)
                   if j.state != JobState.OPEN or self.ctx.ledger.count_job_photos(j.id)]
            self._each_job(due, self._create_and_start_uploads, "creating")

    def _create_and_start_uploads(self, ctx: Context, job: Job) -> None:
        """Create one job at Studio, then hand its photos to the upload workers at once: they start while
        the next job is created, not after every job of the pass is."""
        jobs.create_job(ctx, job)
        self._guard(self._submit_uploads)

    def _queue_jobs(self) -> None:
        """Queue created jobs that are closed and whose uploads are all settled."""
        if not self.ctx.credits.is_open():
            return
        ready = [j for j in self.ctx.ledger.jobs_in_state(JobState.CREATED, JobState.QUEUEING)
                 if jobs.ready_to_queue(self.ctx, j)]
        self._each_job(ready, jobs.queue_uploaded_job, "queueing")

    def _each_job(self, candidates: list, step: Callable, doing: str) -> None:
        """Run a job step on every due job of a watch still configured; report failures through the table."""
        for job in candidates:
            if not self._may_work_on(job.watch, files=False) or not self.ctx.deferrals.due(("job", job.id)):
                continue
            try:
                step(self.ctx, job)
                self.ctx.deferrals.clear(("job", job.id))
            except Exception as exc:  # noqa: BLE001 - the outcome table decides
                if job_step_failed(self.ctx, job, exc, doing) in STOP_THE_PASS:
                    return

    def _submit_uploads(self) -> None:
        self._uploads.submit()

    def _may_work_on(self, watch: str, files: bool = True) -> bool:
        """Return True for a watch still configured, not paused by hand, and (files) whose input may be read."""
        if files and watch in self.ctx.paused_watches:
            return False
        return self.ctx.has_watch(watch) and watch not in self.ctx.held_watches

    def _reap_uploads(self) -> None:
        if self._uploads.reap(self._describe):
            self.wakeup.set()

    def _guard(self, action: Callable[[], object]) -> None:
        """Run one stage; what an error means is the outcome table's to say, and no error stops the loop."""
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - the daemon must carry on; the ledger keeps the intent
            outcome = classify(exc).outcome
            apply_daemon_wide(self.ctx, outcome, exc)
            if outcome in STOP_THE_PASS:
                return
            if isinstance(exc, StudioError):
                log.warning("Studio refused a step of the work loop: %s", exc)
            else:
                log.exception("unexpected error in the work loop; carrying on")

    # ------------------------------------------------------------------ reload

    def request_reload(self) -> None:
        """Ask the loop to reload the configuration file at the start of its next pass (SIGHUP)."""
        self._reload_requested.set()
        self.wakeup.set()

    def reload(self) -> bool:
        """Re-read the config; apply added, removed and changed watches. Return False if refused.

        A config that does not validate, or names a profile Studio does not
        know, is refused with a log line and the running one stays in force.
        """
        source = self.ctx.config.source
        assert source is not None, "only a config read from a file is reloaded (run always has one)"
        try:
            new = load_config(source)
            profiles = resolve_profiles(new, self.ctx.studio.list_profiles())
        except ConfigError as exc:
            log.error("refusing the new configuration; the old one keeps running:\n%s", exc)
            return False
        except StudioError as exc:
            if not exc.retryable:
                raise
            log.warning("cannot ask Studio about the new configuration's profiles (%s); "
                        "the old one keeps running and the reload is tried again shortly", exc)
            again = threading.Timer(10.0, self.request_reload)
            again.daemon = True
            again.start()
            return False
        old = {w.name: w for w in self.ctx.config.watches}
        fresh = {w.name: w for w in new.watches}
        for name in [n for n in old if fresh.get(n) != old[n]]:
            self.discoveries.pop(name).stop()
        self.ctx.config, self.ctx.profiles = new, profiles
        for name, watch in fresh.items():
            if name not in self.discoveries:
                self._add_watch(watch)
        added, removed = sorted(set(fresh) - set(old)), sorted(set(old) - set(fresh))
        changed = sorted(n for n in fresh if n in old and fresh[n] != old[n])
        log.info("reloaded %s: %d watch(es); added %s, removed %s, changed %s", source, len(fresh),
                 added or "none", removed or "none", changed or "none")
        self._warn_restart_only(new)
        return True

    def _warn_restart_only(self, new: Config) -> None:
        """Some settings are fixed at start; say so rather than silently ignoring them."""
        for key in ("upload_concurrency", "download_concurrency", "callback", "http", "studio", "ledger", "notify",
                    "report"):
            if getattr(new, key) != getattr(self._started_config, key):
                log.warning("the new %s takes effect only after a restart", key.replace("_", " "))

    # ------------------------------------------------------------------ health and completion

    def health_problem(self) -> str | None:
        """Return None while the loop comes round and every observer runs; else what is wrong."""
        age = time.monotonic() - self.heartbeat
        if age > self.stall_seconds:
            return f"the work loop has not come round for {age:.0f} s (blocked on a share or a call?)"
        dead = [d.name for d in self.discoveries.values() if not d.observer_alive()]
        if dead:
            return f"the folder observer of {', '.join(dead)} is not running"
        return None

    def status_line(self) -> str:
        """Return the one-line summary systemd shows in `systemctl status`."""
        counts = dict.fromkeys(REPORT_CATEGORIES, 0)
        for per_watch in self.ctx.ledger.state_counts().values():
            for state, n in per_watch.items():
                category = REPORT_CATEGORY[PhotoState(state)]
                if category is not None:
                    counts[category] += n
        line = (f"{len(self.discoveries)} watch(es): {counts['waiting']} waiting, {counts['uploading']} uploading, "
                f"{counts['queued'] + counts['processing']} at Studio, {counts['done']} done, "
                f"{counts['rejected']} rejected, {counts['failed']} failed")
        if self.ctx.credits.paused:
            line += "; PAUSED: out of credits"
        return line

    def observers_alive(self) -> bool:
        """Return True when every watch's observer is running (or the watch is paused)."""
        return all(d.observer_alive() for d in self.discoveries.values())

    def finished(self) -> bool:
        """Return True when every photo found is done, rejected, duplicate, superseded or failed.

        Only configured watches count: photos of a watch removed from the
        config stay in the ledger but are not waited on. What is in memory is
        checked first: the ledger is read only once that is all quiet.
        """
        if any(not d.scanned and d.paused_reason is None for d in self.discoveries.values()):
            return False
        return self._idle_in_memory(self._active()) and not self.unfinished()

    def unfinished(self) -> Unfinished:
        """Return what is still to do for the configured watches (ledger, files settling, transfers)."""
        unscanned = [d.name for d in self.discoveries.values() if not d.scanned and d.paused_reason is None]
        settling = sum(d.pending() for d in self._active()) + self.events.qsize() \
            + self.inspections.pending()
        transfers = len(self._uploads) + self._deliveries.in_flight()
        return count_unfinished(self.ctx.ledger, [d.name for d in self._active()],
                                settling=settling, transfers=transfers, unscanned=unscanned)

    def _active(self) -> list[WatchDiscovery]:
        """The watches `run --once` waits on: every configured one except those paused by hand."""
        return [d for d in self.discoveries.values() if d.name not in self.ctx.held_watches]
