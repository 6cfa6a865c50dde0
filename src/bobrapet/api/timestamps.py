"""RFC 3339 timestamps of run status fields, with sub-second precision.

Invariant: :func:`format_timestamp` writes UTC with a ``Z`` and the fraction of the second
without trailing zeros, like Go's ``RFC3339Nano`` (``2026-01-01T00:00:00.25Z``;
``2026-01-01T00:00:00Z`` on a whole second), so durations of fast steps and durable
deadlines survive a round trip through the store; :func:`parse_timestamp` reads any RFC 3339 form
(with or without fraction, ``Z`` or an offset) and returns an aware UTC datetime.

:func:`format_timestamp` is the one timestamp formatter of the engine, the API types and the
controllers; ``precision`` picks the other wire forms in use: ``"s"`` (``metav1.Time``, e.g.
condition ``lastTransitionTime``), ``"ms"`` (three digits, truncated; a whole second has no
fraction) and ``"us"`` (always six digits).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Precision = Literal["auto", "s", "ms", "us"]


def format_timestamp(moment: datetime, precision: Precision = "auto") -> str:
    """RFC 3339 in UTC with a ``Z`` (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micro = moment.microsecond
    if precision == "us":
        text += f".{micro:06d}"
    elif precision == "ms":
        if micro:
            text += f".{micro // 1000:03d}"
    elif precision == "auto" and micro:
        text += f".{micro:06d}".rstrip("0")
    return text + "Z"


def parse_timestamp(text: str | None) -> datetime | None:
    """The datetime of ``text``; ``None`` for ``None``, empty or malformed input."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
