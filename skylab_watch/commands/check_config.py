"""`skylab-watch check-config`: validate a configuration file offline and exit.

Prints every problem at once (exit 1), or a summary of the watches and
"configuration OK" (exit 0). Offline, profile names are not looked up, since
that needs the API. With `--online` the API key is tried and every watch's
profile is looked up at Studio, by the very checks `doctor` makes
(`doctor.check_api`, `doctor.check_profiles`): a failure of either is printed
with its fix and the exit is 1. Never prints the API key or the callback
secret.
"""

from __future__ import annotations

import argparse
import sys

from skylab_watch.config import Config, load_config
from skylab_watch.doctor import FAIL, Finding, check_api, check_profiles
from skylab_watch.errors import ConfigError
from skylab_watch.startup import make_client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add this command's options to its sub-parser."""
    parser.add_argument("--config", metavar="FILE", required=True, help="configuration file to check")
    parser.add_argument("--online", action="store_true",
                        help="also try the API key and look up every watch's profile at Studio")


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
    if args.online:
        failed = check_online(config)
        if failed:
            print("\n".join(failed), file=sys.stderr)
            return 1
    print("configuration OK" + (" (API key and profiles checked at Studio)" if args.online else ""))
    return 0


def check_online(config: Config) -> list[str]:
    """Ask Studio, as doctor does, whether it takes the key and has every profile; return the failures.

    Each failure is a line naming the watch and its profile (or the API
    problem), with the fix on the next line; an empty list means all is well.
    """
    findings, profiles = check_api(config, make_client)
    if profiles is not None:
        findings = check_profiles(config, profiles)
    return [_failure(f) for f in findings if f.verdict == FAIL]


def _failure(finding: Finding) -> str:
    """Return a failed finding as `error: <detail>` with its fix below."""
    return f"error: {finding.detail}" + (f"\n  fix: {finding.fix}" if finding.fix else "")


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
