"""Truncated one-line previews of payloads for debug logs (reference §8.5).

Invariant: ``preview`` never raises and returns at most ``limit`` characters plus a
``…(N chars)`` suffix when it truncated; secret ``terms`` are redacted before truncating, so
no prefix of a secret survives a cut.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from bobrapet.sdk.redact import redact

PREVIEW_LIMIT = 512


def preview(value: Any, limit: int = PREVIEW_LIMIT, terms: Iterable[str] = ()) -> str:
    """Compact JSON (or repr) of ``value`` with ``terms`` redacted, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    text = redact(text, terms)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} chars)"
