"""The `skylab-watch` command line: one sub-command per verb.

Each sub-command's implementation is imported only when it runs, so that
`skylab-watch --help` stays fast and a missing optional piece (systemd-python)
never breaks an unrelated command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Sequence

from skylab_watch import __version__
from skylab_watch.process_memory import limit_malloc_arenas

# name -> (module, help). The module provides add_arguments(parser) and run(args) -> int.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("skylab_watch.commands.run", "watch the configured folders and process photos"),
    "status": ("skylab_watch.commands.status", "show what the ledger knows: counts, open jobs, failures"),
    "report": ("skylab_watch.commands.report",
               "the morning report: per watch, what was found, delivered, rejected and failed, and why"),
    "retry": ("skylab_watch.commands.retry", "send failed photos again in a new job"),
    "pause": ("skylab_watch.commands.pause", "stop sending a watch's photos to Studio until resume"),
    "resume": ("skylab_watch.commands.resume", "take a paused watch's photos in again"),
    "check-config": ("skylab_watch.commands.check_config", "validate a configuration file and exit"),
    "doctor": ("skylab_watch.commands.doctor", "check the API, profiles, folders, ledger and disk"),
    "emulator": ("skylab_watch.emulator.cli", "run the local Studio emulator"),
    "demo": ("skylab_watch.commands.demo", "run a self-contained demo against the emulator"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command registered.

    With `only` (the command being run), only that command's module is
    imported for its arguments: each command brings its own dependencies
    (the emulator, the HTTP server, the live view), and importing all of
    them cost every start of the daemon a fraction of a second.
    """
    parser = argparse.ArgumentParser(
        prog="skylab-watch",
        description="Hot-folder daemon for Skylab Studio.",
    )
    parser.add_argument("--version", action="version", version=f"skylab-watch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        if only is not None and name != only:
            continue
        module = _load(module_name)
        if module is not None:
            module.add_arguments(sp)
    return parser


def _load(module_name: str):
    """Import a command module; None if it is not part of this build yet."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` and run the chosen sub-command; return its exit code.

    The malloc arena cap comes first, while this is the only thread: arenas
    made before it would stay (see `skylab_watch.process_memory`).
    """
    limit_malloc_arenas()
    given = list(sys.argv[1:] if argv is None else argv)
    chosen = next((arg for arg in given if not arg.startswith("-")), None)
    parser = build_parser(only=chosen if chosen in COMMANDS else None)
    args = parser.parse_args(given)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    module = _load(args._module)
    if module is None:
        print(f"skylab-watch: '{args.command}' is not available in this build", file=sys.stderr)
        return 2
    run: Callable[[argparse.Namespace], int] = module.run
    return int(run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
