"""Studio's documented limits on a photo (studio-api.md): the one place these numbers live.

The daemon checks inputs against them before sending, refuses results and
background images that declare more (a header past them is a decompression
bomb, not a photo), and the emulator enforces them as Studio does.
"""

from __future__ import annotations

MAX_BYTES = 27 * 1024 * 1024
"""Largest file Studio accepts (27 MiB)."""
MAX_SIDE = 6400
"""Longest side Studio accepts, in pixels."""
MAX_PIXELS = 27_000_000
"""Most pixels Studio accepts (27 MP)."""
