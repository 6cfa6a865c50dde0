"""RFC 3339 timestamps of run status fields, with sub-second precision.

Invariant: :func:`format_timestamp` writes UTC with a ``Z`` and the fraction of the second
without trailing zeros, like Go's ``RFC3339Nano`` (``2026-01-01T00:00:00.25Z``;
``2026-01-01T00:00:00Z`` on a whole second), so durations of fast steps and durable
deadlines survive a round trip through the store; :func:`parse_timestamp` reads any RFC 3339 form
(with or without fraction, ``Z`` or an offset) and returns an aware UTC datetime.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
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
