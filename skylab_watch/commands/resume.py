"""`skylab-watch resume WATCH`: lift a pause made with `skylab-watch pause`."""

from __future__ import annotations

import argparse

from skylab_watch.commands.pause import open_for


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `resume`."""
    parser.add_argument("--config", required=True, help="the YAML configuration file")
    parser.add_argument("watch", metavar="WATCH", help="the name of the watch to resume")


def run(args: argparse.Namespace) -> int:
    """Resume the watch; return 0 (also if it was not paused), 2 for an unknown watch or an unreadable config."""
    opened = open_for(args)
    if opened is None:
        return 2
    _, ledger = opened
    try:
        if ledger.resume_watch(args.watch):
            print(f"{args.watch}: resumed; a running daemon takes its photos in again within a second")
        else:
            print(f"{args.watch}: was not paused by hand")
    finally:
        ledger.close()
    return 0
