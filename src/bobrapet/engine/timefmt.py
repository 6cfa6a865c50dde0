"""Timestamps as the engine writes and reads them (RFC 3339, UTC, microsecond precision).

Invariant: every deadline is derived from a *persisted* timestamp string, parsed back with
:func:`parse_time`, so a re-plan after a restart computes exactly the same deadline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from bobrapet.api.timestamps import format_timestamp as format_time
from bobrapet.api.timestamps import parse_timestamp

__all__ = ["format_time", "parse_time", "seconds_until"]


@lru_cache(maxsize=4096)
def parse_time(text: str | None) -> datetime | None:
    """The datetime of an RFC 3339 string (naive values are UTC); ``None`` when absent/invalid."""
    return parse_timestamp(text)


def aware(now: datetime) -> datetime:
    """``now`` with a timezone (naive datetimes are taken as UTC)."""
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def seconds_until(deadline: datetime, now: datetime) -> float:
    return (deadline - aware(now)).total_seconds()
