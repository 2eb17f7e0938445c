"""`skylab-watch status`: what is waiting, uploading, queued, done, rejected and failed."""

from __future__ import annotations

import argparse
import json

from skylab_watch.startup import open_recorded_ledger
from skylab_watch.status import build_report, format_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `status`."""
    parser.add_argument("--config", required=True, help="the YAML configuration file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON, for scripts")


def run(args: argparse.Namespace) -> int:
    """Print the status report; return 0, or 2 if the config or ledger cannot be read."""
    opened = open_recorded_ledger(args.config)
    if opened is None:
        return 2
    config, ledger = opened
    try:
        report = build_report(ledger, [w.name for w in config.watches])
    finally:
        ledger.close()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
