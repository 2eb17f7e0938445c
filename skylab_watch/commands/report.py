"""`skylab-watch report`: the morning report over a window (default the last 12 hours).

Reads the ledger only (it works while the daemon runs, and without the API
key). Per watch: photos found, sent, delivered, rejected and failed (each with
its reason and path), jobs, how long photos waited, throughput, and the
notices raised and cleared; see `skylab_watch.report` for what each counts.
Exit 0, or 2 if the config or the ledger cannot be read.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime

from skylab_watch.commands.run import parse_duration
from skylab_watch.report import build_report
from skylab_watch.report_render import render_text
from skylab_watch.startup import open_recorded_ledger

DEFAULT_SINCE = "12h"


def parse_since(text: str, now: float | None = None) -> float:
    """Given `12h`, `90m`, `1d` (that long ago) or a local time `2026-11-24T18:00`, return a Unix time.

    Raise ArgumentTypeError for anything else, or for a time in the future.
    """
    now = time.time() if now is None else now
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            return now - parse_duration(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is neither a duration (12h, 90m, 1d) nor a time such as 2026-11-24T18:00") from None
    since = moment.timestamp()  # a naive time is local time, as the report prints it
    if since > now:
        raise argparse.ArgumentTypeError(f"{text!r} is in the future")
    return since


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `report`."""
    parser.add_argument("--config", required=True, metavar="FILE", help="the YAML configuration file")
    parser.add_argument("--since", type=parse_since, default=None, metavar="WHEN",
                        help=f"start of the window: a duration ago (12h, 90m, 1d) or a local time "
                             f"(2026-11-24T18:00); default {DEFAULT_SINCE}")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON, for scripts")


def run(args: argparse.Namespace) -> int:
    """Print the report; return 0, or 2 if the config or the ledger cannot be read."""
    until = time.time()
    since = args.since if args.since is not None else parse_since(DEFAULT_SINCE, until)
    opened = open_recorded_ledger(args.config)
    if opened is None:
        return 2
    config, ledger = opened
    try:
        report = build_report(ledger, since, until, watches=[w.name for w in config.watches])
    finally:
        ledger.close()
    print(json.dumps(report.to_dict(), indent=2) if args.json else render_text(report))
    return 0
