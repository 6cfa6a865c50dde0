"""Deep merge of JSON objects (``base`` overridden by ``override``), without copying leaves.

Invariant: neither argument is modified; only the dicts along merged paths are new objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deep_merge(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict[str, Any]:
    if not base:
        return dict(override or {})
    if not override:
        return dict(base)
    out = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out
