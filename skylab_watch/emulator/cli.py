"""`skylab-watch emulator`: run the Studio emulator until SIGINT or SIGTERM.

The API key and callback secret are never printed: the banner names the
option they came from instead.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from skylab_watch.emulator.emulator import Emulator
from skylab_watch.emulator.faults import FaultError, validate
from skylab_watch.emulator.variants import TABLE, VARIANTS

VARIANT_EPILOG = "variants (the default is the documented contract; each bends one answer):\n" + "\n".join(
    f"  {v.name:<27} {v.summary}" for v in TABLE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the emulator's options on its sub-command parser."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to bind; 0 picks a free one (default: 8765)")
    parser.add_argument("--api-key", required=True, help="the X-SLT-API-KEY clients must send")
    parser.add_argument("--processing-seconds", type=float, default=2.0,
                        help="time from queue to completed (default: 2)")
    parser.add_argument("--callback-secret", default=None,
                        help="secret used to sign completion callbacks (default: unsigned)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep state and uploaded bytes here across restarts (default: in memory)")
    parser.add_argument("--faults", type=Path, default=None, metavar="FILE.json",
                        help="fault injection settings to start with (see skylab_watch/emulator/faults.py)")
    parser.add_argument("--upload-url-seconds", type=float, default=900.0,
                        help="validity of presigned upload URLs (default: 900)")
    parser.add_argument("--profile", action="append", default=[], metavar="NAME[:extract|:dual|:bg=IMAGE]",
                        help="start with this profile (repeatable), unless one of that name exists: "
                             "'Packshots', 'Cut-outs:extract', 'Cut-outs:extract:dual', "
                             "'Beach:bg=/path/beach.jpg' (a local image, or an http(s) URL handed to "
                             "clients as is: the emulator never fetches it); also :jpg, :png, :webp")
    parser.add_argument("--variant", action="append", default=[], choices=VARIANTS, metavar="NAME",
                        help="take on a personality of the real service (repeatable; listed below)")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = VARIANT_EPILOG


def _load_faults(path: Path | None) -> dict[str, Any] | None:
    """Return the fault document in `path`; raise FaultError with a fix if unusable."""
    if path is None:
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FaultError(f"{path}: cannot be read ({exc.strerror}); check the --faults path") from exc
    except ValueError as exc:
        raise FaultError(f"{path}: is not valid JSON ({exc})") from exc
    validate(doc)
    return doc


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; return 0, or 2 for unusable options."""
    try:
        faults = _load_faults(args.faults)
        emulator = Emulator(api_key=args.api_key, processing_seconds=args.processing_seconds,
                            callback_secret=args.callback_secret, data_dir=args.data_dir,
                            host=args.host, port=args.port, faults=faults,
                            upload_url_seconds=args.upload_url_seconds, profiles=args.profile,
                            variants=args.variant)
        emulator.start()
    except (FaultError, ValueError, OSError) as exc:
        print(f"skylab-watch emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    signed = "signed with --callback-secret" if args.callback_secret else "unsigned"
    print(f"Studio emulator listening on {emulator.url} (API key from --api-key; callbacks {signed})",
          flush=True)
    _print_setup(emulator)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("Studio emulator stopped", flush=True)
    return 0


def _print_setup(emulator: Emulator) -> None:
    """Say which profiles and variants the emulator starts with."""
    state = emulator.state()
    for profile in state["profiles"]:
        kind = "extract" if profile["enableExtract"] else "plain"
        kind += " + dual" if profile["dualFileOutput"] else ""
        kind += f" + {len(profile['photos'])} background(s)" if profile["photos"] else ""
        print(f"  profile {profile['id']}: {profile['name']} ({kind}, {profile['outputFileType']})", flush=True)
    if state["variants"]:
        print(f"  variants: {', '.join(state['variants'])}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the emulator without the top-level CLI: `python -m skylab_watch.emulator.cli`."""
    parser = argparse.ArgumentParser(prog="skylab-watch emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
