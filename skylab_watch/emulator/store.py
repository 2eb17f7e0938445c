"""The object store behind presigned URLs: signing, verifying, keeping bytes.

Like S3, a URL carries its own authority: an expiry and an HMAC over the
method, path, expiry and (for uploads) the promised Content-MD5 and
X-Amz-Tagging, keyed with a secret only this emulator knows (kept in the
data directory, so URLs stay valid across a restart). No API key is needed on store URLs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

EXPIRES_PARAM = "X-Amz-Expires-At"
SIGNATURE_PARAM = "X-Amz-Signature"
SIGNED_HEADERS_PARAM = "X-Amz-SignedHeaders"
SIGNABLE = ("content-md5", "x-amz-tagging")


class UrlSigner:
    """Make and check presigned URLs for the store paths of one emulator."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, method: str, path: str, expires: int, signed: dict[str, str]) -> str:
        values = "\n".join(f"{name}:{signed[name]}" for name in SIGNABLE if name in signed)
        message = f"{method}\n{path}\n{expires}\n{values}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, base_url: str, method: str, path: str, ttl: float, md5: str | None = None,
             tagging: str | None = None) -> str:
        """Return `base_url + path` signed for `method` until now + `ttl` seconds.

        As with S3, a header signed into the URL must be sent with exactly
        the signed value: `md5` binds Content-MD5, `tagging` X-Amz-Tagging
        (a PUT without it, or with another value, does not match).
        """
        expires = int(time.time() + ttl)
        signed = {name: value for name, value in zip(SIGNABLE, (md5, tagging), strict=True) if value is not None}
        query = {EXPIRES_PARAM: str(expires)}
        if signed:
            query[SIGNED_HEADERS_PARAM] = ";".join(signed)
        query[SIGNATURE_PARAM] = self._mac(method, path, expires, signed)
        return f"{base_url}{path}?{urlencode(query)}"

    def check(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> str | None:
        """Return None if the request is authorised, else the S3 error code.

        `headers` are the request's, lower-cased. The signature is checked
        before the expiry so that a tampered URL is reported as such even
        when it is also old.
        """
        try:
            expires = int(query.get(EXPIRES_PARAM, ""))
        except ValueError:
            return "SignatureDoesNotMatch"
        names = [n for n in query.get(SIGNED_HEADERS_PARAM, "").split(";") if n]
        if any(n not in SIGNABLE for n in names):
            return "SignatureDoesNotMatch"
        expected = self._mac(method, path, expires, {n: headers.get(n) or "" for n in names})
        if not hmac.compare_digest(expected, query.get(SIGNATURE_PARAM, "")):
            return "SignatureDoesNotMatch"
        if time.time() > expires:
            return "AccessDenied"
        return None


class ObjectStore:
    """Bytes by key, in memory or as files under `<data_dir>/objects`."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._memory: dict[str, bytes] = {}
        self._root = data_dir / "objects" if data_dir is not None else None
        if self._root is not None:
            self._root.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path:
        assert self._root is not None
        return self._root / key.replace("/", "_")

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there (atomically on disk)."""
        with self._lock:
            if self._root is None:
                self._memory[key] = data
                return
            tmp = self._file(key).with_suffix(".part")
            tmp.write_bytes(data)
            tmp.replace(self._file(key))

    def get(self, key: str) -> bytes | None:
        """Return the bytes under `key`, or None if nothing was stored."""
        with self._lock:
            if self._root is None:
                return self._memory.get(key)
            path = self._file(key)
            return path.read_bytes() if path.exists() else None

    def delete(self, key: str) -> None:
        """Forget `key`; deleting a missing key is not an error."""
        with self._lock:
            self._memory.pop(key, None)
            if self._root is not None:
                self._file(key).unlink(missing_ok=True)

    def clear(self) -> None:
        """Forget every object."""
        with self._lock:
            self._memory.clear()
            if self._root is not None:
                for path in self._root.iterdir():
                    path.unlink(missing_ok=True)


def original_key(photo_id: int) -> str:
    """Return the store key of a photo's uploaded bytes."""
    return f"originals/{photo_id}"


def md5_base64(data: bytes) -> str:
    """Return the Content-MD5 header value for `data` (base64 of the raw digest)."""
    return base64.b64encode(hashlib.md5(data).digest()).decode()
