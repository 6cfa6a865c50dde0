"""Deterministic names and canonical hashes (reference §5.2, §5.3, §6.1).

Invariants: every function here is pure and byte-compatible with the Go operator, so the
same submission yields the same StoryTrigger/StoryRun/EffectClaim names in both
implementations (concurrent duplicates collapse to one object).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from decimal import Decimal
from typing import Any

MAX_NAME = 253


def _go_number(value: float) -> Any:
    """An integral float64 below 1e21 prints as an integer in Go (``-0`` keeps its sign)."""
    if value == 0 and math.copysign(1.0, value) < 0:
        return value
    if math.isfinite(value) and value == int(value) and abs(value) < 1e21:
        return int(value)
    return value


def _go_normalize(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return _go_number(float(value)) if abs(value) >= 2**53 else value
    if isinstance(value, float):
        return _go_number(value)
    if isinstance(value, dict):
        return {str(k): _go_normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_go_normalize(v) for v in value]
    return value


def go_float(value: float) -> str:
    """A non-integral float as Go's encoding/json writes it.

    Shortest round-trip digits; fixed notation for ``1e-6 <= |x| < 1e21``, otherwise
    exponent notation with a one-digit exponent kept short (``1e-7``, not ``1e-07``).
    """
    if not math.isfinite(value):
        raise ValueError(f"JSON cannot represent {value!r}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = repr(value)
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0] if exponent[:1] in "+-" else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits.rjust(2, '0') if sign == '+' else digits}"
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _go_string(text: str) -> str:
    """A JSON string as Go writes it: a lone surrogate (invalid UTF-16/UTF-8) becomes U+FFFD."""
    return json.dumps(_LONE_SURROGATE.sub("\ufffd", text), ensure_ascii=False)


def _encode(value: Any, out: list[str]) -> None:
    """Append compact JSON with sorted keys (floats in Go's format) to ``out``; iterative."""
    stack: list[Any] = [value]
    while stack:
        cur = stack.pop()
        if isinstance(cur, _Raw):
            out.append(cur.text)
        elif isinstance(cur, dict):
            out.append("{")
            items: list[Any] = []
            for i, key in enumerate(sorted(cur)):
                items.append(_Raw(("," if i else "") + _go_string(key) + ":"))
                items.append(cur[key])
            items.append(_Raw("}"))
            stack.extend(reversed(items))
        elif isinstance(cur, list):
            out.append("[")
            seq: list[Any] = []
            for i, item in enumerate(cur):
                if i:
                    seq.append(_Raw(","))
                seq.append(item)
            seq.append(_Raw("]"))
            stack.extend(reversed(seq))
        elif isinstance(cur, float):
            out.append(go_float(cur))
        elif isinstance(cur, str):
            out.append(_go_string(cur))
        else:
            out.append(json.dumps(cur, ensure_ascii=False))


class _Raw:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def canonical_json(value: Any) -> str:
    """Compact JSON as Go's encoding/json writes a parsed value (sorted keys, HTML-escaped)."""
    out: list[str] = []
    _encode(_go_normalize({} if value is None else value), out)
    text = "".join(out)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def canonical_input_hash(inputs: Any) -> str:
    """Lowercase hex sha256 of :func:`canonical_json` (absent/null inputs hash as ``{}``)."""
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def _sha1_16(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def _trim_prefix(prefix: str, room: int, fallback: str) -> str:
    cut = prefix[: max(room, 0)].rstrip("-")
    return cut or fallback


def story_trigger_name(story_namespace: str, story_name: str, identity: str) -> str:
    """``<story>-trigger-<sha1(ns/story/identity)[:16]>``, story prefix truncated to fit 253."""
    suffix = f"-trigger-{_sha1_16(f'{story_namespace}/{story_name}/{identity}')}"
    if len(story_name) + len(suffix) <= MAX_NAME:
        return story_name + suffix
    return _trim_prefix(story_name, MAX_NAME - len(suffix), "s") + suffix


def sanitize_identity(identity: str) -> str:
    """Lowercase, every run of characters outside ``[a-z0-9]`` one ``-``, trimmed.

    Go lowercases rune by rune (simple case mapping); Python's full mapping differs only for
    U+0130 (``İ`` → ``i`` plus a combining dot), which is mapped as Go maps it.
    """
    s = re.sub(r"[^a-z0-9-]+", "-", identity.replace("\u0130", "i").lower())
    s = re.sub(r"-{2,}", "-", s)
    return s.strip("-")


def derive_story_run_name(story_namespace: str, story_name: str, identity: str) -> str:
    """The StoryRun name a trigger with ``identity`` creates (reference §5.3 step 4)."""
    digest = _sha1_16(f"{story_namespace}/{story_name}/{identity}")
    sanitized = sanitize_identity(identity)
    if not sanitized:
        name = f"{story_name}-{digest}"
    elif sanitized != identity or story_namespace:
        name = f"{story_name}-{sanitized}-{digest}"
    else:
        name = f"{story_name}-{sanitized}"
    if len(name) <= MAX_NAME:
        return name
    return _trim_prefix(story_name, MAX_NAME - len(digest) - 1, "s") + f"-{digest}"


def effect_claim_name(namespace: str, step_run_name: str, effect_key: str) -> str:
    """``<stepRun>-effect-<sha1(ns/stepRun/effectKey)[:16]>`` (reference §6.1)."""
    return f"{step_run_name}-effect-{_sha1_16(f'{namespace}/{step_run_name}/{effect_key}')}"


def step_run_idempotency_key(namespace: str, story_run: str, step_id: str) -> str:
    """Default StepRun idempotency key (reference §4.3).

    ``ns/<namespace>/storyrun/<run>/step/<stepId>``, replaced by ``sha256:<hex>`` of that
    string when it is longer than 256 characters, so the key always fits the field.
    """
    key = f"ns/{namespace}/storyrun/{story_run}/step/{step_id}"
    if len(key) > 256:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key
