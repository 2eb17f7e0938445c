"""`skylab-watch status`: what is waiting, uploading, queued, done, rejected and failed."""

from __future__ import annotations

import argparse
import json
import sys

from skylab_watch.config import load_config
from skylab_watch.errors import ConfigError, LedgerError
from skylab_watch.ledger import Ledger
from skylab_watch.status import build_report, format_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `status`."""
    parser.add_argument("--config", required=True, help="the YAML configuration file")
    parser.add_argument("--json", action="store_true", help="print the report as JSON, for scripts")


def run(args: argparse.Namespace) -> int:
    """Print the status report; return 0, or 2 if the config or ledger cannot be read."""
    try:
        config = load_config(args.config, check_paths=False, need_secrets=False)
        if not config.ledger.exists():
            print(f"no ledger at {config.ledger} yet: skylab-watch has not run with this config",
                  file=sys.stderr)
            return 2
        ledger = Ledger(config.ledger)
    except (ConfigError, LedgerError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        report = build_report(ledger, [w.name for w in config.watches])
    finally:
        ledger.close()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
