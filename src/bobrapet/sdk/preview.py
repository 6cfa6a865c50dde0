"""Truncated one-line previews of payloads for debug logs (reference §8.5).

Invariant: ``preview`` never raises and returns at most ``limit`` characters plus a
``…(N chars)`` suffix when it truncated.
"""

from __future__ import annotations

import json
from typing import Any

PREVIEW_LIMIT = 512


def preview(value: Any, limit: int = PREVIEW_LIMIT) -> str:
    """Compact JSON (or repr) of ``value`` cut to ``limit`` characters."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…({len(text)} chars)"
