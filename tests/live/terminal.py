"""Run a real command on a pseudo-terminal and read back what a person would have seen."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

# CSI sequences (cursor moves, colours, erase) and OSC sequences (titles, links).
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")


def terminal_env(**extra: str) -> dict[str, str]:
    """The test's environment as a person's terminal would give it: a capable TERM, no systemd, no width."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("JOURNAL_STREAM", "INVOCATION_ID", "COLUMNS", "LINES", "NO_COLOR", "TERM")}
    return {**env, "TERM": "xterm-256color", **extra}


def run_on_pty(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 90,
               columns: int = 150, rows: int = 40) -> tuple[int, str]:
    """Run `argv` with stdin, stdout and stderr on a new pty of `columns` x `rows`; return (exit code, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=str(cwd), env=env,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child and everything it started closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            raise AssertionError(f"{argv} still running after {timeout} s:\n"
                                 + b"".join(chunks).decode(errors="replace")[-3000:])
        return proc.wait(15), b"".join(chunks).decode("utf-8", errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def screen_lines(output: str) -> list[str]:
    """Return the output's lines with the terminal's control sequences taken out (every frame of a redraw)."""
    return [line for line in re.split(r"[\r\n]+", ANSI.sub("", output)) if line.strip()]
