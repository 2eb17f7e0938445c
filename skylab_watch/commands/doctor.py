"""`skylab-watch doctor`: check that this machine is ready to run a configuration.

Where `check-config` validates the file offline, doctor asks Studio, looks at
the folders, the ledger, the disk and the inotify limit, and prints one
verdict per finding with the fix (see `skylab_watch.doctor`). Exit 0 when
nothing failed (warnings allowed), 1 when something failed, 2 when the
configuration itself is invalid. Run it as the daemon's user: permissions are
checked for whoever runs it. Never prints the API key.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from skylab_watch.config import load_config
from skylab_watch.doctor import FAIL, OK, WARN, Finding, count_verdicts, run_checks
from skylab_watch.errors import ConfigError

LABELS = {OK: "[ok]", WARN: "[warn]", FAIL: "[FAIL]"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `doctor`."""
    parser.add_argument("--config", metavar="FILE", required=True, help="the YAML configuration file")
    parser.add_argument("--json", action="store_true", help="print the findings as a JSON list")


def run(args: argparse.Namespace) -> int:
    """Run every check and print the findings; return 0 (no failure), 1 (a failure) or 2 (invalid config)."""
    try:
        # Paths are not checked here: missing folders are findings of their own, with the others.
        config = load_config(args.config, check_paths=False)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    findings = run_checks(config)
    print(json.dumps([dataclasses.asdict(f) for f in findings], indent=2) if args.json else format_report(findings))
    return 1 if any(f.verdict == FAIL for f in findings) else 0


def format_report(findings: list[Finding]) -> str:
    """Given findings, return the text report: one line each, its fix indented below, then a summary."""
    lines = []
    for finding in findings:
        lines.append(f"{LABELS.get(finding.verdict, finding.verdict):<6} {finding.check}: {finding.detail}")
        if finding.fix:
            lines.append(f"       fix: {finding.fix}")
    counts = count_verdicts(findings)
    warnings = f"{counts[WARN]} warning{'s' if counts[WARN] != 1 else ''}"
    lines.append(f"{len(findings)} checks: {counts[OK]} ok, {warnings}, {counts[FAIL]} failed")
    return "\n".join(lines)
