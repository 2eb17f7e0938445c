"""`skylab-watch check-config`: validate a configuration file offline and exit.

Prints every problem at once (exit 1), or a summary of the watches and
"configuration OK" (exit 0). Profile names are not looked up here, since that
needs the API; `skylab-watch doctor` does it. Never prints the API key or the
callback secret.
"""

from __future__ import annotations

import argparse
import sys

from skylab_watch.config import Config, load_config
from skylab_watch.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's options to its sub-parser."""
    parser.add_argument("--config", metavar="FILE", required=True, help="configuration file to check")


def run(args: argparse.Namespace) -> int:
    """Given parsed arguments, check the file; return 0 if it is valid, 1 if not."""
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 1
    print(describe_config(config))
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("configuration OK")
    return 0


def describe_config(config: Config) -> str:
    """Given a valid Config, return a short summary of it for people; holds no secrets."""
    lines = [f"Studio API: {config.studio.api_url}", f"ledger: {config.ledger}"]
    for watch in config.watches:
        lines.append(
            f"watch {watch.name}: {watch.input} → {watch.output} "
            f"(profile {watch.profile!r}, {watch.observer} observer, after success: {watch.after_success})"
        )
    if config.callback is not None:
        lines.append(f"callback: listening on {config.callback.host}:{config.callback.port}, "
                     f"public URL {config.callback.public_url}")
    return "\n".join(lines)
