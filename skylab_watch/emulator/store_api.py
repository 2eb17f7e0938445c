"""The presigned object-store endpoints under `/_store/`, answering as S3 does.

`PUT /_store/originals/{photo_id}` stores a photo's bytes (checked against
Content-MD5 and, for job photos, the signed X-Amz-Tagging);
`GET /_store/originals/{photo_id}` and `GET /_store/retouched/{photo_id}`
serve them back. No API key: the signature in the URL is the authority.
Fault keys: `"PUT store"` and `"GET store"`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import time
from typing import TYPE_CHECKING

from skylab_watch.emulator.faults import InjectedError
from skylab_watch.emulator.protocol import MAX_BODY_BYTES, Request, Response, s3_error
from skylab_watch.emulator.store import original_key

if TYPE_CHECKING:
    from skylab_watch.emulator.core import Studio

STORE_PREFIX = "/_store/"
MAX_UPLOAD_BYTES = MAX_BODY_BYTES
KINDS = ("originals", "retouched")
SIGNATURE_MESSAGES = {
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided.",
    "AccessDenied": "Request has expired",
}


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


def _md5_matches(header: str, digest: bytes) -> bool | None:
    """Compare Content-MD5 with the body's digest: True/False, or None if the header is malformed."""
    try:
        claimed = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(claimed) != 16:
        return None
    return claimed == digest


def _error(error: InjectedError) -> Response:
    """Return an injected error in S3's shape."""
    headers = {"Retry-After": str(math.ceil(error.retry_after))} if error.retry_after is not None else {}
    return s3_error(error.status, "InternalError" if error.status >= 500 else "SlowDown", error.message, headers)


def _preamble(studio: Studio, req: Request, key: str) -> Response | tuple[str, int, InjectedError | None]:
    """Count, delay, decide faults and check the signature; return the target or an error."""
    studio.count_call(key)
    delay = studio.faults.latency(key)
    if delay:
        time.sleep(delay)
    error = studio.faults.error_for(key, f"{req.method} {req.path}")
    if error is not None and not error.after:
        return _error(error)
    target = _parse(req.path)
    if target is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    problem = studio.signer.check(req.method, req.path, req.query, req.headers)
    if problem is not None:
        return s3_error(403, problem, SIGNATURE_MESSAGES[problem])
    return target[0], target[1], error


def _store(studio: Studio, req: Request, photo_id: int) -> Response:
    """Check the digest and the PUT faults, then keep the bytes (hashed once, for all three uses)."""
    failure = studio.faults.put_failure(photo_id)
    if failure is not None:
        return s3_error(failure, "InternalError", "Injected fault: the upload failed")
    header = req.header("Content-MD5")
    digest = hashlib.md5(req.body).digest()
    matches = _md5_matches(header, digest) if header is not None else True
    if matches is None:
        return s3_error(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")
    if not matches or studio.faults.put_corrupted(photo_id):
        return s3_error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
    if not studio.store_original(photo_id, req.body, req.header("X-Amz-Tagging"), digest.hex()):
        return s3_error(404, "NoSuchKey", f"photo {photo_id} no longer exists")
    return Response(200, b"", "text/plain", {"ETag": f'"{digest.hex()}"'})


def _put(studio: Studio, req: Request) -> Response:
    """Store a photo's bytes after the size, signature, fault and digest checks."""
    if req.body_unread:
        studio.count_call("PUT store")
        return entity_too_large(req.declared_length)
    target = _preamble(studio, req, "PUT store")
    if isinstance(target, Response):
        return target
    kind, photo_id, after = target
    if kind != "originals":
        return s3_error(403, "SignatureDoesNotMatch", SIGNATURE_MESSAGES["SignatureDoesNotMatch"])
    response = _store(studio, req, photo_id)
    return _error(after) if after is not None else response


def _get(studio: Studio, req: Request) -> Response:
    """Serve an original or a retouched output after the signature and fault checks."""
    target = _preamble(studio, req, "GET store")
    if isinstance(target, Response):
        return target
    kind, photo_id, after = target
    if after is not None:
        return _error(after)
    if kind == "originals":
        data = studio.objects.get(original_key(photo_id))
        content_type = "application/octet-stream"
    else:
        if studio.faults.download_expired(photo_id):
            return s3_error(403, "AccessDenied", "Request has expired")
        found = studio.retouched_bytes(photo_id)
        data, content_type = found if found else (None, "")
    if data is None:
        return s3_error(404, "NoSuchKey", "The specified key does not exist.")
    return Response(200, data, content_type, {"ETag": f'"{hashlib.md5(data).hexdigest()}"'})


def serve_store(studio: Studio, req: Request) -> Response:
    """Serve one request below `/_store/`."""
    if req.method == "PUT":
        return _put(studio, req)
    if req.method == "GET":
        return _get(studio, req)
    return s3_error(405, "MethodNotAllowed", f"{req.method} is not allowed on store objects")
