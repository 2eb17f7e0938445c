"""Hostile files made on the spot: a PNG decompression bomb and a small file that is slow to decode."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png_bomb(path: Path, width: int = 60000, height: int = 60000, zero_bytes: int = 4 * 2**20) -> Path:
    """Write a PNG whose valid header declares `width` x `height` RGB pixels, over a small zlib stream of zeros.

    Like the bombs in the wild it is tiny on disk; only the first rows are
    really there (a full stream of 10.8 GB of zeros would take seconds to
    compress), which no check may find out by decoding: the header must
    be enough to refuse it.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes(zero_bytes), 9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b""))
    return path


def make_slow_png(path: Path, side: int = 5000) -> Path:
    """Write a complete, valid, all-black `side` x `side` RGB PNG within Studio's limits (25 MP at 5000).

    Small on disk (about 75 KB) but every one of its pixels must be
    inflated to check it: a few hundred milliseconds of decoding, which a
    test's shrunken time bound turns into "too slow".
    """
    row = bytes(1 + 3 * side)  # filter byte 0, then black pixels
    squeezer = zlib.compressobj(1)
    pixels = b"".join(squeezer.compress(row) for _ in range(side)) + squeezer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b""))
    return path
