"""Redaction of secret values from messages and debug previews."""

from __future__ import annotations

from bobrapet.sdk.preview import preview
from bobrapet.sdk.redact import REDACTED, redact, redaction_terms


def test_terms_are_values_and_their_lines_longest_first_and_skip_short_ones() -> None:
    terms = redaction_terms({"a": {"k": "abc", "pem": "-----BEGIN-----\nAAAA\n"}, "b": {"t": "token-1"}})
    assert terms == ("-----BEGIN-----\nAAAA\n", "-----BEGIN-----", "token-1", "AAAA")


def test_redact_hides_a_value_containing_another_whole() -> None:
    terms = redaction_terms({"a": {"x": "secret", "y": "secret-long"}})
    assert redact("use secret-long and secret", terms) == f"use {REDACTED} and {REDACTED}"


def test_preview_redacts_before_truncating() -> None:
    value = {"pad": "x" * 500, "token": "tok-abcdefghijklmnop"}
    text = preview(value, limit=525, terms=("tok-abcdefghijklmnop",))
    assert "tok-abc" not in text and text.endswith("chars)")
    assert "tok-" in preview(value, limit=525)  # without terms the prefix would leak
