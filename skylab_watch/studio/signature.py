"""Signing and checking Studio's completion callbacks.

Studio signs a callback as base64(HMAC-SHA256(secret, f"{timestamp}:{body}")).
A valid signature alone does not stop a replay of an old callback, so the
timestamp must also fall within a tolerance window of now.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

DEFAULT_TOLERANCE_SECONDS = 300.0


def sign_callback(secret: str, timestamp: str | int, body: str | bytes) -> str:
    """Given the shared secret, the timestamp header and the raw body, return the signature header."""
    raw = body.decode("utf-8") if isinstance(body, bytes) else body
    message = f"{timestamp}:{raw}".encode()
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def check_callback(secret: str, body: str | bytes, timestamp: str | None, signature: str | None,
                   now: float | None = None, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> str | None:
    """Return None if the callback is authentic and fresh, else a short reason to log.

    The comparison is constant-time so that a forger learns nothing from timing.
    """
    if not timestamp or not signature:
        return "missing X-Skylab-Timestamp or X-Skylab-Signature header"
    try:
        sent_at = float(timestamp)
    except ValueError:
        return "timestamp is not a number"
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        return f"timestamp is {abs(current - sent_at):.0f} s away from now (tolerance {tolerance:.0f} s)"
    expected = sign_callback(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("ascii", "replace")):
        return "signature does not match"
    return None


def verify_callback(secret: str, body: str | bytes, timestamp: str | None, signature: str | None,
                    now: float | None = None, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> bool:
    """Return True when the callback is authentic and fresh (see `check_callback`)."""
    return check_callback(secret, body, timestamp, signature, now, tolerance) is None
