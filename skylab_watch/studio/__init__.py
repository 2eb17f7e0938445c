"""The Skylab Studio API client: calls, uploads, retry policy, callback signatures."""

from skylab_watch.studio.client import StudioClient
from skylab_watch.studio.errors import (
    AnswerTooLarge, AuthError, BadDigestError, DownloadTooLarge, InvalidRequestError, NotFoundError,
    OutOfCreditsError, RateLimitedError, RedirectError, RefusedUrlError, ServerError, StoreError, StudioError,
    TransportError, UrlExpiredError,
)
from skylab_watch.studio.retry import NO_RETRY, RetryPolicy
from skylab_watch.studio.signature import check_callback, sign_callback, verify_callback
from skylab_watch.studio.upload import content_md5, send_photo_bytes, upload_photo_file

__all__ = [
    "StudioClient", "RetryPolicy", "NO_RETRY",
    "StudioError", "AuthError", "OutOfCreditsError", "NotFoundError", "InvalidRequestError",
    "RateLimitedError", "ServerError", "TransportError", "StoreError", "BadDigestError", "UrlExpiredError",
    "RedirectError", "AnswerTooLarge", "DownloadTooLarge", "RefusedUrlError",
    "sign_callback", "check_callback", "verify_callback",
    "content_md5", "send_photo_bytes", "upload_photo_file",
]
