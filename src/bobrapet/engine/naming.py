"""Deterministic DNS-1123 child names (reference §4.1).

Invariants: every result is a valid DNS-1123 label (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``,
at most 63 characters) and depends only on the arguments. Names that fit are the
sanitized parts joined by ``-``; longer names are cut to 50 characters and suffixed with
``-`` + the first 12 hex digits of a sha256 over the *original* parts (each followed by a
NUL byte), so distinct long inputs keep distinct names. Sanitizing is ASCII-only: any
character outside ``[a-z0-9]`` (after lowercasing) becomes a separator.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache

MAX_LABEL = 63
_HASH_LEN = 12
_DEFAULT = "resource"
_INVALID_RUN = re.compile(r"[^a-z0-9]+")


def _sanitize(part: str) -> str:
    """Lowercase; runs of other characters become one ``-``; no leading/trailing ``-``."""
    return _INVALID_RUN.sub("-", part.lower()).strip("-")


def _hash_parts(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:_HASH_LEN]


@lru_cache(maxsize=8192)
def compose_dns1123(*parts: str) -> str:
    """``ComposeDNS1123``: join sanitized parts; hash-suffix when longer than 63.

    Memoised (a pure function of its arguments): a run's engine looks each of its StepRuns
    up by this name several times per step.
    """
    base = "-".join(s for s in (_sanitize(p) for p in parts) if s)
    if not base:
        return _DEFAULT
    if len(base) <= MAX_LABEL:
        return base
    suffix = _hash_parts(*parts)
    prefix = base[: MAX_LABEL - _HASH_LEN - 1].rstrip("-")
    return f"{prefix}-{suffix}"


def compose_dns1123_with_suffix(base: str, suffix: str) -> str:
    """``ComposeDNS1123WithSuffix``: ``<base>-<suffix>``, or ``<prefix>-<hash>-<suffix>`` to fit."""
    clean_base = _sanitize(base)
    clean_suffix = _sanitize(suffix)
    if not clean_suffix:
        return compose_dns1123(clean_base)
    if not clean_base:
        clean_base = _DEFAULT
    name = f"{clean_base}-{clean_suffix}"
    if len(name) <= MAX_LABEL:
        return name
    digest = _hash_parts(clean_base, clean_suffix)
    room = MAX_LABEL - len(clean_suffix) - 1 - _HASH_LEN - 1
    if room < 1:
        return compose_dns1123(clean_suffix, digest)
    prefix = clean_base[:room].rstrip("-") or _DEFAULT
    return f"{prefix}-{digest}-{clean_suffix}"
