"""`skylab-watch pause WATCH [--reason TEXT]`: stop sending a watch's photos to Studio, without a restart.

The pause is a row in the ledger; a running daemon obeys it within a second (see
`pipeline/pauses.py` for what exactly stops). `resume` (commands/resume.py) lifts it.
"""

from __future__ import annotations

import argparse
import sys
import time

from skylab_watch.config import Config, load_config
from skylab_watch.errors import ConfigError, LedgerError
from skylab_watch.ledger import Ledger


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `pause`."""
    parser.add_argument("--config", required=True, help="the YAML configuration file")
    parser.add_argument("watch", metavar="WATCH", help="the name of the watch to pause")
    parser.add_argument("--reason", default="paused by hand", help="why, shown in status and the alert")


def open_for(args: argparse.Namespace) -> tuple[Config, Ledger] | None:
    """Return the config and ledger for a pause or resume of args.watch; print why not and return None."""
    try:
        config = load_config(args.config, check_paths=False, need_secrets=False)
        config.watch(args.watch)
        return config, Ledger(config.ledger)
    except (ConfigError, LedgerError) as exc:
        print(str(exc), file=sys.stderr)
    except KeyError as exc:
        print(f"skylab-watch {args.command}: {exc.args[0]}", file=sys.stderr)
    return None


def run(args: argparse.Namespace) -> int:
    """Pause the watch; return 0 (also if it already was), 2 for an unknown watch or an unreadable config."""
    opened = open_for(args)
    if opened is None:
        return 2
    _, ledger = opened
    reason = " ".join(args.reason.split()) or "paused by hand"
    try:
        if ledger.pause_watch(args.watch, reason, time.time()):
            print(f"{args.watch}: paused ({reason}). New photos wait; photos already at Studio are still "
                  f"delivered. Undo with: skylab-watch resume {args.watch}")
        else:
            reason_then, since = ledger.paused_by_hand()[args.watch]
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
            print(f"{args.watch}: already paused since {when} ({reason_then})")
    finally:
        ledger.close()
    return 0
