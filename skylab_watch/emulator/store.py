"""The object store behind presigned URLs: signing, verifying, keeping bytes.

Like S3, a URL carries its own authority: an expiry and an HMAC over the
method, path, expiry and (for uploads) the promised Content-MD5, keyed with a
secret only this emulator knows. No API key is needed on store URLs.
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
MD5_BOUND_PARAM = "X-Amz-Md5-Bound"


class UrlSigner:
    """Make and check presigned URLs for the store paths of one emulator."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, method: str, path: str, expires: int, md5: str) -> str:
        message = f"{method}\n{path}\n{expires}\n{md5}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, base_url: str, method: str, path: str, ttl: float, md5: str | None = None) -> str:
        """Return `base_url + path` signed for `method` until now + `ttl` seconds.

        A PUT URL signed with `md5` only accepts a request whose Content-MD5
        header is exactly that value, as S3 does.
        """
        expires = int(time.time() + ttl)
        query = {EXPIRES_PARAM: str(expires)}
        if md5 is not None:
            query[MD5_BOUND_PARAM] = "1"
        query[SIGNATURE_PARAM] = self._mac(method, path, expires, md5 or "")
        return f"{base_url}{path}?{urlencode(query)}"

    def check(self, method: str, path: str, query: dict[str, str], content_md5: str | None) -> str | None:
        """Return None if the request is authorised, else the S3 error message.

        The signature is checked before the expiry so that a tampered URL is
        reported as such even when it is also old.
        """
        try:
            expires = int(query.get(EXPIRES_PARAM, ""))
        except ValueError:
            return "SignatureDoesNotMatch"
        md5 = (content_md5 or "") if query.get(MD5_BOUND_PARAM) == "1" else ""
        expected = self._mac(method, path, expires, md5)
        if not hmac.compare_digest(expected, query.get(SIGNATURE_PARAM, "")):
            return "SignatureDoesNotMatch"
        if time.time() > expires:
            return "Request has expired"
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
