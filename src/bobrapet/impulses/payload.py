"""Turning broker payloads and headers into a :class:`~bobrapet.impulses.delivery.Delivery`'s.

Invariants: :func:`decode_body` never raises: valid JSON (UTF-8) becomes its value, anything
else its text (invalid UTF-8 bytes replaced by U+FFFD); JSON with ``NaN``/``Infinity`` is not
JSON a resource can hold, so it stays text. :func:`text_headers` turns every header value into
a string (text as is, bytes decoded, other values as compact JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NoReturn


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def as_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw


def decode_body(raw: bytes | str) -> Any:
    """The JSON value of ``raw``, or ``raw`` as text when it is not JSON."""
    text = as_text(raw)
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def header_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return as_text(bytes(value))
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def text_headers(headers: Mapping[Any, Any] | None) -> dict[str, str]:
    """``headers`` with text keys and values (``None`` gives ``{}``)."""
    if not headers:
        return {}
    return {header_text(k): header_text(v) for k, v in headers.items()}
