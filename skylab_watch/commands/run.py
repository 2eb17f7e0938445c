"""`skylab-watch run`: the daemon in the foreground (also what systemd starts).

Stopping is bounded: on SIGTERM or SIGINT the loop stops taking work, the
transfers in flight get `--grace` seconds (default STOP_GRACE_SECONDS), and
what is still running then is abandoned: its intent is in the ledger and the
next start redoes it. Should the loop itself be stuck in a call when the
signal comes, a timer ends the process FORCE_EXIT_MARGIN seconds after the
grace: the ledger is safe against that (it is safe against SIGKILL).

With `--once` the run ends with a summary on stdout (the logs are on stderr):
the morning report's figures over the run, then the exit code and its
meaning; the codes are `skylab_watch.unfinished`'s EXIT_* (README, `--help`).

At a terminal (text logs on a TTY, `--no-progress` not given) a live view
per watch sits under the scrolling log lines (`skylab_watch.live`); its last
frame stays on screen when the run ends, above the summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from skylab_watch.config import Config, load_config
from skylab_watch.daemon import STOP_GRACE_SECONDS, Daemon
from skylab_watch.errors import ConfigError, SkylabWatchError
from skylab_watch.ledger import Ledger, LedgerLock
from skylab_watch.live import Figures, LiveView, terminal_console
from skylab_watch.logs import setup_logging
from skylab_watch.process_memory import bound_libvips
from skylab_watch.report import build_report
from skylab_watch.report_render import render_text
from skylab_watch.service import HealthPinger, Notifier
from skylab_watch.startup import make_client, open_ledger, wait_for_profiles
from skylab_watch.studio import AuthError
from skylab_watch.unfinished import EXIT_CODES_HELP, EXIT_MEANINGS, once_exit_code

log = logging.getLogger("skylab_watch")

FORCE_EXIT_MARGIN = 4.0
"""Seconds past the grace after which a stop that has not finished ends the process outright."""

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Given `90s`, `10m`, `2h`, `1d` or a plain number of seconds, return seconds; raise ArgumentTypeError."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if match is None or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 10m or 2h")
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `run`, and its exit codes under `--help`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EXIT_CODES_HELP
    parser.add_argument("--config", required=True, help="the YAML configuration file")
    parser.add_argument("--once", action="store_true",
                        help="process what is there, wait until it is all finished, print a summary, then exit "
                             "(0 all done, 1 something failed, 3 done with rejections)")
    parser.add_argument("--timeout", type=parse_duration, default=None, metavar="DURATION",
                        help="with --once: give up after DURATION (90s, 10m, 2h), name what is unfinished, exit 1")
    parser.add_argument("--grace", type=float, default=STOP_GRACE_SECONDS, metavar="SECONDS",
                        help=f"on SIGTERM/SIGINT, how long transfers in flight may finish before they are "
                             f"abandoned and redone on the next start (default {STOP_GRACE_SECONDS:g})")
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="log as human text (default) or one JSON object per line")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None)
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="at a terminal, print plain log lines without the live view per watch "
                             "(it is never shown under systemd, into a pipe or a file, or with --log-format json)")


def run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT (or, with --once, until done); return the exit code."""
    if args.timeout is not None and not args.once:
        print("skylab-watch run: --timeout only applies with --once", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    log_format = args.log_format or config.log_format
    console = terminal_console(log_format, enabled=getattr(args, "progress", True))
    setup_logging(args.log_level or config.log_level, log_format, config.secrets, console=console)
    for warning in config.warnings:
        log.warning("%s: %s", args.config, warning)
    bound_libvips()
    stop = threading.Event()
    try:
        with LedgerLock(config.ledger):
            return _run(config, args, stop, console)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    except AuthError as exc:
        log.error("Studio refused the API key (%s). Check studio.api_key in %s.", exc.message, args.config)
        return 2
    except SkylabWatchError as exc:
        log.error("%s", exc)
        return 2


def _run(config: Config, args: argparse.Namespace, stop: threading.Event, console=None) -> int:
    ledger = open_ledger(config)
    with make_client(config) as studio:
        daemon_holder: list[Daemon] = []
        _install_signal_handlers(stop, daemon_holder, args.grace, forced_code=1 if args.once else 0)
        notifier = Notifier()
        profiles = wait_for_profiles(config, studio, stop,
                                     on_wait=lambda why, wait: notifier.extend_start(wait + 60, why[:200]))
        if profiles is None:
            return 0
        daemon = Daemon(config, ledger, studio, profiles, once=args.once)
        figures = Figures(ledger, daemon.started_at) if console is not None else None
        daemon_holder.append(daemon)
        if notifier.watchdog_seconds:
            daemon.stall_seconds = max(1.0, notifier.watchdog_seconds / 2)
        found = daemon.start()
        notifier.ready(f"watching {len(config.watches)} folder(s); start-up scan found {found} new file(s)")
        pinger = HealthPinger(notifier, daemon.health_problem, daemon.status_line)
        pinger.start()
        if stop.is_set():
            daemon.stop()
        try:
            try:
                with _live_view(console, figures, daemon, args.once):
                    code = daemon.run(timeout=args.timeout)
            finally:
                log.info("skylab-watch is stopping; transfers in progress get up to %g s to finish", args.grace)
                notifier.stopping()
                pinger.stop()
                daemon.shutdown(args.grace)
            if args.once:
                code = finish_once(ledger, config, daemon.started_at, code, stopped=stop.is_set())
        finally:
            taken, waits, waited = ledger.lock_use()
            log.info("ledger lock: taken %d times, %d after a wait, %.2f s of waiting in all", taken, waits, waited)
            ledger.close()
        log.info("skylab-watch stopped")
        return code


@contextmanager
def _live_view(console, figures: Figures | None, daemon: Daemon, once: bool) -> Iterator[None]:
    """Show the live view while the work loop runs (when there is a terminal); leave its last frame.

    The figures are read on the loop's own thread (its `on_loop` hook), and
    once more when it ends, so the frame left on screen is the final count.
    """
    if console is None or figures is None:
        yield
        return
    view = LiveView(console, lambda: figures.snapshot, once)
    daemon.on_loop = figures.on_loop
    view.start()
    try:
        yield
    finally:
        daemon.on_loop = None
        figures.take(daemon)
        view.stop()


def finish_once(ledger: Ledger, config: Config, started_at: float, loop_code: int, stopped: bool) -> int:
    """Print the summary of a `--once` run to stdout (the logs go to stderr); return its exit code.

    The summary is the morning report over the run (`skylab_watch.report`),
    followed by the exit code and what it means, so that a script reading
    stdout and a person at a terminal see the same thing.
    """
    report = build_report(ledger, started_at, time.time(), watches=[w.name for w in config.watches])
    code = once_exit_code(loop_code, report.total("rejected"), stopped)
    meaning = "stopped on request before the end" if stopped and code == 0 else EXIT_MEANINGS[code]
    try:
        print(f"Summary of this run\n{render_text(report)}\n\nexit {code}: {meaning}", flush=True)
    except OSError as exc:  # stdout closed (a pipe whose reader left): the exit code still tells
        log.warning("could not print the summary of the run: %s", exc)
    return code


def _install_signal_handlers(stop: threading.Event, holder: list[Daemon], grace: float, forced_code: int) -> None:
    def on_signal(signum, _frame) -> None:
        log.info("received %s; finishing the current step", signal.Signals(signum).name)
        if not stop.is_set():
            _exit_if_not_stopped_after(grace + FORCE_EXIT_MARGIN, forced_code)
        stop.set()
        for daemon in holder:
            daemon.stop()
    def on_hangup(_signum, _frame) -> None:
        log.info("received SIGHUP; reloading the configuration")
        for daemon in holder:
            daemon.request_reload()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGHUP, on_hangup)


def _exit_if_not_stopped_after(seconds: float, code: int) -> None:
    """End the process after `seconds` unless it has exited by then (a call hung on the loop's thread)."""
    def force() -> None:
        log.error("still not stopped %g s after the signal (a call on the work loop is hung); exiting now. "
                  "The ledger records every step in progress; the next start carries on.", seconds)
        logging.shutdown()
        os._exit(code)
    timer = threading.Timer(seconds, force)
    timer.daemon = True
    timer.start()
