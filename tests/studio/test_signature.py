"""Callback signatures: good ones pass, forged and stale ones do not."""

import base64
import hashlib
import hmac
import json

from skylab_watch.studio import check_callback, sign_callback, verify_callback

SECRET = "s3cret-callback"
BODY = json.dumps({"id": 7, "status": "completed"})


def test_signature_matches_the_contract_formula():
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"1700000000:{BODY}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert sign_callback(SECRET, "1700000000", BODY) == expected


def test_good_signature_within_the_window_is_accepted():
    sig = sign_callback(SECRET, "1000", BODY)
    assert verify_callback(SECRET, BODY, "1000", sig, now=1100)
    assert verify_callback(SECRET, BODY.encode(), "1000", sig, now=1100)


def test_tampered_body_is_refused():
    sig = sign_callback(SECRET, "1000", BODY)
    assert check_callback(SECRET, BODY.replace("completed", "failed"), "1000", sig, now=1000) == \
        "signature does not match"


def test_wrong_secret_is_refused():
    sig = sign_callback("other", "1000", BODY)
    assert not verify_callback(SECRET, BODY, "1000", sig, now=1000)


def test_stale_timestamp_is_refused_even_with_a_valid_signature():
    sig = sign_callback(SECRET, "1000", BODY)
    reason = check_callback(SECRET, BODY, "1000", sig, now=1000 + 301)
    assert reason is not None and "away from now" in reason
    assert verify_callback(SECRET, BODY, "1000", sig, now=1000 + 3600, tolerance=7200)


def test_future_timestamp_is_refused():
    sig = sign_callback(SECRET, "5000", BODY)
    assert not verify_callback(SECRET, BODY, "5000", sig, now=1000)


def test_missing_headers_and_garbage_are_refused():
    assert not verify_callback(SECRET, BODY, None, "x", now=1000)
    assert not verify_callback(SECRET, BODY, "1000", None, now=1000)
    assert not verify_callback(SECRET, BODY, "soon", "x", now=1000)
    assert not verify_callback(SECRET, BODY, "1000", "not-base64-ü", now=1000)
