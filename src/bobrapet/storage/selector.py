"""``$bubuStoragePath`` selectors: narrowing a stored value (reference §7.2).

Grammar (whitespace around the selector is ignored): a sequence of segments, each one of

* ``field`` or ``.field`` — a key of an object (any characters but ``.`` and ``[``);
* ``['key']`` / ``["key"]`` — a key written quoted (may contain ``.`` and ``[``);
* ``[i]`` — an index (``0`` and up) of an array;
* ``[*]`` — every item of an array: the rest of the selector applies to each item and the
  result is the list of their results (``items[*].id``); nested wildcards give nested lists.

Invariants: parsing is memoised per text; a malformed selector or one that does not match
the value raises :class:`~bobrapet.storage.errors.SelectorError` naming the segment and what
was found there; the value is never modified. Standard library only.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from bobrapet.storage.errors import SelectorError


class _Wildcard:
    __slots__ = ()

    def __repr__(self) -> str:
        return "[*]"


WILDCARD: Final = _Wildcard()
Segment = str | int | _Wildcard


@lru_cache(maxsize=1024)
def parse_selector(text: str) -> tuple[Segment, ...]:
    """The segments of ``text`` (an empty selector selects the whole value)."""
    s = text.strip()
    segments: list[Segment] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == ".":
            i += 1
            if i >= len(s) or s[i] in ".[":
                raise SelectorError(f"selector {text!r}: empty field name at position {i}")
            continue
        if c == "[":
            end = s.find("]", i)
            quote = s[i + 1] if i + 1 < len(s) else ""
            if quote in ("'", '"'):
                close = s.find(quote + "]", i + 2)
                if close == -1:
                    raise SelectorError(f"selector {text!r}: unterminated quoted key at position {i}")
                segments.append(s[i + 2 : close])
                i = close + 2
                continue
            if end == -1:
                raise SelectorError(f"selector {text!r}: unterminated '[' at position {i}")
            inner = s[i + 1 : end].strip()
            if inner == "*":
                segments.append(WILDCARD)
            elif inner.isdigit():
                segments.append(int(inner))
            else:
                raise SelectorError(
                    f"selector {text!r}: '[{inner}]' is not an index; use [0], [1]..., [*] or ['key']"
                )
            i = end + 1
            continue
        start = i
        while i < len(s) and s[i] not in ".[":
            i += 1
        segments.append(s[start:i].strip())
    return tuple(segments)


def _spell(segments: tuple[Segment, ...]) -> str:
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif isinstance(seg, _Wildcard):
            out += "[*]"
        else:
            out += f".{seg}" if out else seg
    return out or "(root)"


def _type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _walk(value: Any, segments: tuple[Segment, ...], start: int) -> Any:
    cur = value
    for i in range(start, len(segments)):
        seg = segments[i]
        if isinstance(seg, _Wildcard):
            if not isinstance(cur, list):
                raise SelectorError(f"{_spell(segments[: i + 1])}: [*] needs an array, found {_type(cur)}")
            return [_walk(item, segments, i + 1) for item in cur]
        if isinstance(seg, int):
            if not isinstance(cur, list):
                raise SelectorError(f"{_spell(segments[: i + 1])}: index needs an array, found {_type(cur)}")
            if seg >= len(cur):
                raise SelectorError(f"{_spell(segments[: i + 1])}: index out of range (length {len(cur)})")
            cur = cur[seg]
            continue
        if not isinstance(cur, dict):
            raise SelectorError(f"{_spell(segments[: i + 1])}: field needs an object, found {_type(cur)}")
        if seg not in cur:
            raise SelectorError(f"{_spell(segments[: i + 1])}: no field {seg!r} in the stored value")
        cur = cur[seg]
    return cur


def select(value: Any, selector: str) -> Any:
    """The part of ``value`` that ``selector`` names (see the module docstring)."""
    if not selector.strip():
        return value
    return _walk(value, parse_selector(selector), 0)
