"""The complete upload of one photo's bytes, as the contract describes it.

create record -> presigned URL for this exact MD5 -> PUT with Content-MD5 ->
(on failure that cannot be mended) delete the record, so a job is never
queued with a photo that has no bytes.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path

from skylab_watch.studio.client import StudioClient
from skylab_watch.studio.errors import BadDigestError, StudioError, UrlExpiredError

log = logging.getLogger("skylab_watch.studio")


def content_md5(data: bytes) -> str:
    """Return the base64 of the raw 16-byte MD5 of `data`, as Content-MD5 wants it."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def send_photo_bytes(client: StudioClient, photo_id: int, data: bytes, md5_b64: str | None = None,
                     regular_job: bool = True, url_refreshes: int = 2, digest_retries: int = 1) -> None:
    """PUT `data` for an existing photo record.

    An expired or refused URL is replaced with a fresh one (up to
    `url_refreshes` times) rather than failing. A BadDigest answer for bytes
    hashed from the very buffer we sent means they were damaged in transit,
    so the PUT is tried again `digest_retries` times before giving up.
    """
    md5_b64 = md5_b64 or content_md5(data)
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
            if digests >= digest_retries:
                raise
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
