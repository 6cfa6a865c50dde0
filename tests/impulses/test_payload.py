"""Broker payloads and headers as delivery bodies and headers."""

from __future__ import annotations

from bobrapet.impulses.payload import decode_body, text_headers


def test_json_payloads_are_parsed_and_anything_else_is_text() -> None:
    assert decode_body(b'{"order": 7, "items": [1, 2]}') == {"order": 7, "items": [1, 2]}
    assert decode_body(b"42") == 42
    assert decode_body('"quoted"') == "quoted"
    assert decode_body(b"hello world") == "hello world"
    assert decode_body(b"") == ""
    assert decode_body(b"\xff\xfeok") == "\ufffd\ufffdok"
    assert decode_body(b'{"x": NaN}') == '{"x": NaN}'


def test_header_values_become_text() -> None:
    headers = {"s": "v", "b": b"bytes", "n": 5, "t": True, "l": [1, "a"], b"k": None}
    assert text_headers(headers) == {
        "s": "v",
        "b": "bytes",
        "n": "5",
        "t": "true",
        "l": '[1,"a"]',
        "k": "null",
    }
    assert text_headers(None) == {}
