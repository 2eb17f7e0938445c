"""The complete upload of one photo's bytes, as the contract describes it.

create record -> presigned URL for this exact MD5 -> PUT with Content-MD5 ->
(on failure that cannot be mended) delete the record, so a job is never
queued with a photo that has no bytes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from pathlib import Path
from typing import Iterator

from skylab_watch.studio.client import StudioClient
from skylab_watch.studio.errors import BadDigestError, StudioError, UrlExpiredError

log = logging.getLogger("skylab_watch.studio")


CHUNK_BYTES = 1 << 18
"""How much of a file is read (and hashed) at a time while it is sent."""


def content_md5(data: bytes) -> str:
    """Return the base64 of the raw 16-byte MD5 of `data`, as Content-MD5 wants it."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def md5_hex_to_b64(md5_hex: str) -> str:
    """Return the Content-MD5 form (base64 of the raw digest) of an MD5 recorded as hex."""
    return base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii")


class FileBody:
    """The first `size` bytes of an open file, sent in chunks, never held whole in memory.

    It is sent with Content-MD5 = the MD5 recorded when it was validated,
    and the store refuses other bytes (BadDigest, as S3 does and the
    contract says): that is what Content-MD5 is for, so the bytes are not
    hashed a second time on the way out (on a busy NAS that hash cost as
    much as the check of the file). Only after a BadDigest does
    `still_matches()` read the file once more, to tell a file changed since
    it was validated (never sent again) from bytes damaged in transit (sent
    again). A file that got shorter is padded with zeros up to the promised
    length (`short` says so): the request always ends, and the store
    refuses it. Each iteration starts again at byte 0, so a retried PUT
    sends the file anew.
    """

    def __init__(self, fd: int, size: int, md5_hex: str, chunk: int = CHUNK_BYTES) -> None:
        self.fd, self.size, self.md5_hex, self.chunk = fd, size, md5_hex, chunk
        self.short = False
        self._matches: bool | None = None

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        self.short, self._matches = False, None
        offset = 0
        while offset < self.size:
            want = min(self.chunk, self.size - offset)
            data = b"" if self.short else os.pread(self.fd, want, offset)
            if len(data) < want:
                self.short = True
                data += bytes(want - len(data))
            offset += len(data)
            yield data

    def still_matches(self) -> bool:
        """Return True if the file's first `size` bytes still hash to `md5_hex` (read once per send)."""
        if self._matches is None:
            digest, offset = hashlib.md5(), 0
            while offset < self.size:
                data = os.pread(self.fd, min(self.chunk, self.size - offset), offset)
                if not data:
                    break
                digest.update(data)
                offset += len(data)
            self._matches = offset == self.size and digest.hexdigest() == self.md5_hex
        return self._matches


def send_photo_bytes(client: StudioClient, photo_id: int, data: bytes | FileBody, md5_b64: str | None = None,
                     regular_job: bool = True, url_refreshes: int = 2, digest_retries: int = 1) -> None:
    """PUT `data` (bytes, or a FileBody streamed from the validated file) for an existing photo record.

    A FileBody is sent under the MD5 it was recorded with (`md5_b64` defaults to it); bytes are hashed here.

    An expired or refused URL is replaced with a fresh one (up to
    `url_refreshes` times) rather than failing. A BadDigest answer for bytes
    hashed from the very buffer we sent means they were damaged in transit,
    so the PUT is tried again `digest_retries` times before giving up.
    """
    if md5_b64 is None:
        md5_b64 = md5_hex_to_b64(data.md5_hex) if isinstance(data, FileBody) else content_md5(data)
    url = client.upload_url(photo_id, md5_b64)
    refreshes, digests = 0, 0
    while True:
        try:
            client.put_bytes(url, data, md5_b64, regular_job=regular_job)
            return
        except UrlExpiredError:
            if refreshes >= url_refreshes:
                raise
            refreshes += 1
            log.info("upload URL for photo %s expired; asking for a fresh one", photo_id)
            url = client.upload_url(photo_id, md5_b64)
        except BadDigestError:
            if digests >= digest_retries or (isinstance(data, FileBody) and not data.still_matches()):
                raise  # a file that no longer hashes to its record is not sent again
            digests += 1
            log.info("the store saw damaged bytes for photo %s; sending them again", photo_id)


def upload_photo_file(client: StudioClient, path: str | Path, job_id: int, name: str | None = None,
                      regular_job: bool = True) -> dict:
    """Upload the file at `path` as a new photo of job `job_id`; return the photo record.

    If the bytes cannot be stored, the record is deleted before the error is
    raised again, so the job never holds an empty photo.
    """
    data = Path(path).read_bytes()
    photo = client.create_photo(name or Path(path).name, job_id=job_id)
    try:
        send_photo_bytes(client, int(photo["id"]), data, regular_job=regular_job)
    except StudioError:
        delete_quietly(client, int(photo["id"]))
        raise
    return photo


def delete_quietly(client: StudioClient, photo_id: int) -> bool:
    """Delete a photo record, logging rather than raising if that fails too; return True if deleted."""
    try:
        client.delete_photo(photo_id)
        return True
    except StudioError as exc:
        log.warning("could not delete the empty photo record %s: %s", photo_id, exc)
        return False
