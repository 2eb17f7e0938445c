"""`skylab-watch demo`: the whole program on one machine, with no network and no arguments.

Starts the Studio emulator inside this process, makes a drop folder with
sample photos generated with pyvips, runs the real daemon until every photo
is delivered, and prints where the inputs and outputs are.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

import pyvips
import yaml

from skylab_watch.config import load_config
from skylab_watch.daemon import Daemon
from skylab_watch.emulator import Emulator
from skylab_watch.ledger import Ledger
from skylab_watch.logs import setup_logging
from skylab_watch.startup import make_client, wait_for_profiles
from skylab_watch.status import build_report, format_report

# The emulator's own --profile specs (`skylab-watch emulator --profile ...` takes the same).
PROFILES = ["Packshots:jpg", "Cut-outs:extract:dual:jpg"]
SAMPLES = {
    "packshots": ["shoes/sneaker-red.jpg", "shoes/sneaker-blue.jpg", "bags/tote.jpg"],
    "cutouts": ["hats/fedora.png", "hats/cap.jpg"],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`demo` takes no arguments beyond an optional folder to work in."""
    parser.add_argument("--dir", default=None, help="work in this folder instead of a new temporary one")


def run(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when every sample photo came back retouched."""
    setup_logging("info", "text")
    root = Path(args.dir or tempfile.mkdtemp(prefix="skylab-watch-demo-")).resolve()
    api_key = secrets.token_hex(16)
    print(f"skylab-watch demo in {root}")
    with Emulator(api_key=api_key, processing_seconds=1.0, profiles=PROFILES) as emu:
        print(f"Studio emulator running at {emu.url} with profiles {', '.join(PROFILES)}")
        _make_samples(root)
        config_path = _write_config(root, emu.url, api_key)
        report = _run_daemon(config_path)
    _print_summary(root, report)
    counts = report["watches"]
    expected = sum(len(v) for v in SAMPLES.values())
    return 0 if sum(c["done"] for c in counts.values()) == expected else 1


def _make_samples(root: Path) -> None:
    """Draw simple product shots: a coloured object on a light studio background."""
    for n, rel in enumerate(rel for group in SAMPLES.values() for rel in group):
        watch = next(w for w, names in SAMPLES.items() if rel in names)
        path = root / "drop" / watch / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        width, height = 640, 480
        background = (pyvips.Image.black(width, height, bands=3) + [238, 236, 232]).cast("uchar")
        colour = [(200, 40, 40), (40, 80, 200), (120, 90, 60), (30, 30, 30), (220, 170, 40)][n % 5]
        mask = pyvips.Image.xyz(width, height)
        distance = ((mask[0] - width / 2) ** 2 / 2.2 + (mask[1] - height / 2) ** 2) ** 0.5
        inside = (distance < 150).ifthenelse(colour, [0, 0, 0]).cast("uchar")
        image = (distance < 150).ifthenelse(inside, background)
        image.write_to_file(str(path))


def _write_config(root: Path, url: str, api_key: str) -> Path:
    watches: list[dict[str, Any]] = [
        {"name": "packshots", "input": str(root / "drop" / "packshots"), "output": str(root / "out" / "packshots"),
         "profile": "Packshots", "settle_seconds": 0.5, "batch": {"max_photos": 10, "quiet_seconds": 1}},
        {"name": "cutouts", "input": str(root / "drop" / "cutouts"), "output": str(root / "out" / "cutouts"),
         "profile": "Cut-outs", "settle_seconds": 0.5, "batch": {"max_photos": 10, "quiet_seconds": 1}},
    ]
    doc = {"studio": {"api_url": url, "api_key": api_key}, "ledger": str(root / "ledger.sqlite3"),
           "watches": watches, "polling": {"interval_seconds": 1}}
    for watch in watches:
        Path(watch["output"]).mkdir(parents=True, exist_ok=True)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def _run_daemon(config_path: Path) -> dict:
    """Run the real daemon with --once semantics; return the status report afterwards."""
    config = load_config(config_path)
    ledger = Ledger(config.ledger)
    try:
        with make_client(config) as studio:
            profiles = wait_for_profiles(config, studio, threading.Event())
            assert profiles is not None, "wait_for_profiles returns None only once stopped, and nothing stops it"
            daemon = Daemon(config, ledger, studio, profiles, once=True)
            daemon.start()
            try:
                daemon.run()
            finally:
                daemon.shutdown()
        return build_report(ledger, [w.name for w in config.watches])
    finally:
        ledger.close()


def _print_summary(root: Path, report: dict) -> None:
    logging.getLogger("skylab_watch").handlers[0].flush()
    print()
    print(format_report(report))
    print()
    print(f"Inputs:  {root / 'drop'}")
    print(f"Outputs: {root / 'out'}")
    for path in sorted((root / "out").rglob("*")):
        if path.is_file():
            image = pyvips.Image.new_from_file(str(path))
            alpha = ", with transparency" if image.hasalpha() else ""
            print(f"  {path.relative_to(root / 'out')}  ({image.width} x {image.height}{alpha})")
    print(f"Config used: {root / 'config.yaml'}   Ledger: {root / 'ledger.sqlite3'}")
    print("Try: skylab-watch status --config " + str(root / "config.yaml"))
