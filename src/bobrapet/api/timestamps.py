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
    """RFC 3339 in UTC with a ``Z`` (naive datetimes are taken as UTC).

    The last result is remembered (datetimes are immutable): a status write formats the same
    ``now`` several times.
    """
    global _last
    last = _last
    if last[0] is moment and last[1] == precision:
        return last[2]
    text = _format(moment, precision)
    _last = (moment, precision, text)
    return text


def _format(moment: datetime, precision: Precision) -> str:
    tz = moment.tzinfo
    if tz is not UTC:
        moment = moment.replace(tzinfo=UTC) if tz is None else moment.astimezone(UTC)
    # isoformat() is much cheaper than strftime() and equal on 4-digit years.
    text = moment.isoformat()[:19] if moment.year >= 1000 else moment.strftime("%Y-%m-%dT%H:%M:%S")
    micro = moment.microsecond
    if precision == "us":
        text += f".{micro:06d}"
    elif precision == "ms":
        if micro:
            text += f".{micro // 1000:03d}"
    elif precision == "auto" and micro:
        text += f".{micro:06d}".rstrip("0")
    return text + "Z"


_last: tuple[object, str, str] = (None, "", "")


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
