"""redaction: every URL query value goes, wherever the URL sits; configured secrets are masked by value."""

from __future__ import annotations

import pytest

from skylab_watch.redaction import SecretMasker, redact_query_values
from skylab_watch.studio.errors import TransportError


@pytest.mark.parametrize("text, expected", [
    ("PUT https://s3.example/b/k.jpg?X-Amz-Signature=abc&X-Amz-Credential=AK%2Fx",
     "PUT https://s3.example/b/k.jpg?X-Amz-Signature=[redacted]&X-Amz-Credential=[redacted]"),
    ('{"url":"http://h/k?Signature=s1&Expires=9","next":"x"}',
     '{"url":"http://h/k?Signature=[redacted]&Expires=[redacted]","next":"x"}'),
    ("<Url>http://h/k?sig=a&amp;token=b</Url>", "<Url>http://h/k?sig=[redacted]&amp;token=[redacted]</Url>"),
    ("with url: /k?X-Amz-Security-Token=t0k (Caused by X)",
     "with url: /k?X-Amz-Security-Token=[redacted] (Caused by X)"),
    ("'http://h/k?a=1#frag'", "'http://h/k?a=[redacted]#frag'"),
    ("http://h/k?flag&empty=&x=1", "http://h/k?flag&empty=&x=[redacted]"),
], ids=["s3", "json", "xml", "path-only", "fragment", "flag-and-empty"])
def test_every_query_value_is_redacted_and_the_rest_of_the_text_kept(text, expected):
    assert redact_query_values(text) == expected


@pytest.mark.parametrize("text", ["done? yes", "why?", "a = b ? c : d", "no query http://h/k.jpg"])
def test_text_without_a_query_string_is_left_alone(text):
    assert redact_query_values(text) == text


def test_short_secrets_are_masked_as_whole_tokens_and_long_ones_anywhere():
    masker = SecretMasker(["ab", "long-secret-1234", None, ""])
    assert masker.mask("key=ab, 'ab' tab abc") == "key=[redacted], '[redacted]' tab abc"
    assert masker.mask("xxlong-secret-1234yy") == "xx[redacted]yy"
    assert not SecretMasker([None, ""]) and SecretMasker([None, ""]).mask("ab") == "ab"


def test_a_studio_error_never_keeps_a_presigned_query_for_the_ledger_or_status():
    error = TransportError("connection failed: Max retries exceeded with url: /k?X-Amz-Signature=abc",
                           "PUT", "http://h/k?X-Amz-Signature=abc")
    assert "abc" not in str(error) and "abc" not in error.message and "abc" not in error.url
    assert "X-Amz-Signature=[redacted]" in error.message
