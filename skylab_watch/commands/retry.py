"""`skylab-watch retry`: send failed photos again, in a new job.

Works with the daemon running or not: it only moves failed photos back to
`ready` in the ledger, and the reconciler batches them on its next pass.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from skylab_watch.config import Config, load_config
from skylab_watch.errors import ConfigError, LedgerError
from skylab_watch.ledger import Ledger, Photo, PhotoState
from skylab_watch.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `retry`."""
    parser.add_argument("--config", required=True, help="the YAML configuration file")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="only these files (absolute, or relative to their watch's input); default: all failed")


def run(args: argparse.Namespace) -> int:
    """Move the chosen failed photos back to ready; return 0, or 1 if a named path matched nothing."""
    try:
        config = load_config(args.config, check_paths=False, need_secrets=False)
        ledger = Ledger(config.ledger)
    except (ConfigError, LedgerError) as exc:
        print(str(exc), file=sys.stderr)
        return 2
    try:
        failed = retryable_failures(ledger)
        chosen = [p for p in failed if not args.paths or _matches(config, p, args.paths)]
        for photo in chosen:
            retry_photo(ledger, photo)
            print(f"{printable(photo.watch)}: {printable(photo.rel_path)} will be sent again "
                  f"(it failed: {printable(photo.reason or '')})")
    finally:
        ledger.close()
    if not chosen:
        print("no failed photo matches" if args.paths else "no failed photos to retry")
        return 1 if args.paths else 0
    return 0


def retry_photo(ledger: Ledger, photo: Photo) -> None:
    """Put a failed photo back to ready, detached from its old job, so it goes into a new one."""
    ledger.update_photo(photo.id, state=PhotoState.READY, reason=None, job_id=None, studio_name=None,
                        studio_id=None, attempts=0)


def retryable_failures(ledger: Ledger, watch: str | None = None) -> list[Photo]:
    """Return the failed photos (of one watch, or all) that are their file's newest version: the ones a
    retry sends again (an older version's failure is history, its file has moved on)."""
    return [photo for photo in ledger.photos_in_state(PhotoState.FAILED, watch=watch) if _is_latest(ledger, photo)]


def _is_latest(ledger: Ledger, photo: Photo) -> bool:
    latest = ledger.latest_version(photo.watch, photo.rel_path)
    return latest is not None and latest.id == photo.id


def _matches(config: Config, photo: Photo, paths: list[str]) -> bool:
    watch = config.watch(photo.watch)
    full = (watch.input / photo.rel_path).resolve()
    for given in paths:
        if given == photo.rel_path or Path(given).resolve() == full or \
                (watch.input / given).resolve() == full:
            return True
    return False
