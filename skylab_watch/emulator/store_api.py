"""The presigned object-store endpoints under `/_store/`, answering as S3 does.

`PUT /_store/originals/{photo_id}` stores a photo's bytes (checked against
Content-MD5); `GET /_store/originals/{photo_id}` and
`GET /_store/retouched/{photo_id}` serve them back. No API key: the
signature in the URL is the authority. Fault keys: `"PUT store"` and
`"GET store"`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import time
from typing import TYPE_CHECKING

from skylab_watch.emulator.protocol import Request, Response, s3_error
from skylab_watch.emulator.store import original_key

if TYPE_CHECKING:
    from skylab_watch.emulator.emulator import Emulator

STORE_PREFIX = "/_store/"
MAX_UPLOAD_BYTES = 27 * 1024 * 1024
KINDS = ("originals", "retouched")


def entity_too_large(size: int) -> Response:
    """Answer a PUT whose declared size is over the limit, without reading it."""
    return s3_error(400, "EntityTooLarge",
                    f"Your proposed upload of {size} bytes exceeds the maximum allowed size of "
                    f"{MAX_UPLOAD_BYTES} bytes", {"Connection": "close"})


def _parse(path: str) -> tuple[str, int] | None:
    """Return (kind, photo id) for a store path, or None if it is not one."""
    parts = path[len(STORE_PREFIX):].strip("/").split("/")
    if len(parts) != 2 or parts[0] not in KINDS or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])


def _md5_matches(header: str, body: bytes) -> bool | None:
    """Compare Content-MD5 with the body: True/False, or None if the header is malformed."""
    try:
        claimed = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(claimed) != 16:
        return None
    return claimed == hashlib.md5(body).digest()


def _preamble(emu: Emulator, req: Request, key: str) -> Response | tuple[str, int]:
    """Count, delay, inject faults and check the signature; return the target or an error."""
    emu.count_call(key)
    delay = emu.faults.latency(key)
    if delay:
        time.sleep(delay)
    error = emu.faults.error_for(key)
    if error is not None:
        headers = {"Retry-After": str(math.ceil(error.retry_after))} if error.retry_after is not None else {}
        return s3_error(error.status, "InternalError" if error.status >= 500 else "SlowDown",
                        error.message, headers)
    target = _parse(req.path)
    if target is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    problem = emu.signer.check(req.method, req.path, req.query, req.header("Content-MD5"))
    if problem is not None:
        return s3_error(403, "AccessDenied", problem)
    return target


def _put(emu: Emulator, req: Request) -> Response:
    """Store a photo's bytes after the signature, fault and digest checks."""
    target = _preamble(emu, req, "PUT store")
    if isinstance(target, Response):
        return target
    kind, photo_id = target
    if kind != "originals":
        return s3_error(403, "AccessDenied", "SignatureDoesNotMatch")
    if emu.faults.take("put_fail_next"):
        status = emu.faults.put_fail_status()
        return s3_error(status, "InternalError", "Injected fault: the upload failed")
    header = req.header("Content-MD5")
    matches = _md5_matches(header, req.body) if header is not None else True
    if matches is None:
        return s3_error(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    if not matches or emu.faults.take("put_corrupt_next"):
        return s3_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    if not emu.store_original(photo_id, req.body, req.header("X-Amz-Tagging")):
        return s3_error(404, "NoSuchKey", f"photo {photo_id} no longer exists")
    etag = f'"{hashlib.md5(req.body).hexdigest()}"'
    return Response(200, b"", "text/plain", {"ETag": etag})


def _get(emu: Emulator, req: Request) -> Response:
    """Serve an original or a retouched output after the signature and fault checks."""
    target = _preamble(emu, req, "GET store")
    if isinstance(target, Response):
        return target
    kind, photo_id = target
    if kind == "originals":
        data = emu.objects.get(original_key(photo_id))
        content_type = "application/octet-stream"
    else:
        if emu.faults.take("expire_downloads_next"):
            return s3_error(403, "AccessDenied", "Request has expired")
        found = emu.retouched_bytes(photo_id)
        data, content_type = found if found else (None, "")
    if data is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return Response(200, data, content_type, {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})


def serve_store(emu: Emulator, req: Request) -> Response:
    """Serve one request below `/_store/`."""
    if req.method == "PUT":
        return _put(emu, req)
    if req.method == "GET":
        return _get(emu, req)
    return s3_error(405, "MethodNotAllowed", f"{req.method} is not allowed on store objects")
