"""Checking the HMAC-SHA256 signature of a request body (webhook ``X-Signature-256``, GitHub
``X-Hub-Signature-256``).

Invariants: the expected value is ``sha256=`` followed by the lowercase hex HMAC-SHA256 of
the raw body bytes keyed by the UTF-8 secret; the comparison is constant-time
(:func:`hmac.compare_digest`) on the whole header value (surrounding blanks ignored, the hex
compared case-insensitively); a missing or wrong signature raises
:class:`~bobrapet.impulses.sink.Refused` with 401 and a message that names the header and how
to sign, never the expected value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from bobrapet.impulses.sink import Refused

PREFIX = "sha256="


def sign(body: bytes, key: str) -> str:
    """The signature header value of ``body`` under ``key``."""
    return PREFIX + hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, headers: Mapping[str, str], header: str, key: str) -> None:
    """Raise :class:`Refused` (401) unless ``headers[header]`` signs ``body`` with ``key``."""
    given = headers.get(header.lower())
    how = f"{header}: sha256=<hex HMAC-SHA256 of the raw body, keyed by the signing secret>"
    if not given:
        raise Refused(f"missing signature header; send {how}", code=401, reason="Unauthorized")
    provided = given.strip()
    if provided[: len(PREFIX)].lower() == PREFIX:
        provided = PREFIX + provided[len(PREFIX) :].lower()
    if not hmac.compare_digest(provided.encode("utf-8"), sign(body, key).encode("ascii")):
        raise Refused(f"invalid signature in {header}; expected {how}", code=401, reason="Unauthorized")
