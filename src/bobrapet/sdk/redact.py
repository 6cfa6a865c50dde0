"""Hiding secret values from messages, previews and tracebacks (reference §8.4: redacted
``lastFailureMsg``; issue "secret values never appear in status, events, logs or previews").

Invariants: ``redact`` replaces every occurrence of every term by :data:`REDACTED`, longest
term first (so a value containing another is hidden whole); terms are the secret values, and
each line of a multi-line value, of at least :data:`MIN_REDACTED_LENGTH` characters — shorter
ones would mangle ordinary text. Standard library only (imported by warm workers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"
MIN_REDACTED_LENGTH = 4


def redaction_terms(secrets: Mapping[str, Mapping[str, Any]], extra: Iterable[Any] = ()) -> tuple[str, ...]:
    """The texts to hide for ``secrets`` (logical name -> key -> value) and the ``extra``
    texts, longest first."""
    terms: set[str] = set()
    values = [v for keys in secrets.values() if isinstance(keys, Mapping) for v in keys.values()]
    for value in (*values, *extra):
        if not isinstance(value, str):
            continue
        for part in (value, *(line.strip() for line in value.splitlines())):
            if len(part) >= MIN_REDACTED_LENGTH:
                terms.add(part)
    return tuple(sorted(terms, key=lambda t: (-len(t), t)))


def redact(text: str, terms: Iterable[str]) -> str:
    """``text`` with every term replaced by :data:`REDACTED`."""
    for term in terms:
        if term and term in text:
            text = text.replace(term, REDACTED)
    return text
