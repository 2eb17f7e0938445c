"""`skylab-watch run`: the daemon in the foreground (also what systemd starts)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from skylab_watch.config import load_config
from skylab_watch.daemon import Daemon
from skylab_watch.errors import ConfigError, SkylabWatchError
from skylab_watch.logs import setup_logging
from skylab_watch.service import HealthPinger, Notifier
from skylab_watch.startup import make_client, open_ledger, wait_for_profiles
from skylab_watch.studio import AuthError

log = logging.getLogger("skylab_watch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `run`."""
    parser.add_argument("--config", required=True, help="the YAML configuration file")
    parser.add_argument("--once", action="store_true",
                        help="process what is there, wait until it is all finished, then exit (1 if anything failed)")
    parser.add_argument("--log-format", choices=("text", "json"), default=None,
                        help="log as human text (default) or one JSON object per line")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None)


def run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT (or, with --once, until done); return the exit code."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    secrets = [config.studio.api_key] + ([config.callback.secret] if config.callback else [])
    setup_logging(args.log_level or config.log_level, args.log_format or config.log_format, secrets)
    stop = threading.Event()
    try:
        return _run(config, args.once, stop)
    except ConfigError as exc:
        log.error("%s", exc)
        return 2
    except AuthError as exc:
        log.error("Studio refused the API key (%s). Check studio.api_key in %s.", exc.message, args.config)
        return 2
    except SkylabWatchError as exc:
        log.error("%s", exc)
        return 2


def _run(config, once: bool, stop: threading.Event) -> int:
    ledger = open_ledger(config)
    with make_client(config) as studio:
        daemon_holder: list[Daemon] = []
        _install_signal_handlers(stop, daemon_holder)
        notifier = Notifier()
        profiles = wait_for_profiles(config, studio, stop,
                                     on_wait=lambda why, wait: notifier.extend_start(wait + 60, why[:200]))
        if profiles is None:
            return 0
        daemon = Daemon(config, ledger, studio, profiles, once=once)
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
            code = daemon.run()
        finally:
            log.info("skylab-watch is stopping; letting transfers in progress finish")
            notifier.stopping()
            pinger.stop()
            daemon.shutdown()
            ledger.close()
        log.info("skylab-watch stopped")
        return code


def _install_signal_handlers(stop: threading.Event, holder: list[Daemon]) -> None:
    def on_signal(signum, _frame) -> None:
        log.info("received %s; finishing the current step", signal.Signals(signum).name)
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
