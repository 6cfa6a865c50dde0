"""The one timestamp formatter and its precisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bobrapet.api.conditions import format_time
from bobrapet.api.timestamps import format_timestamp, parse_timestamp

MOMENT = datetime(2026, 1, 1, 0, 0, 1, 235000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "precision", "text"),
    [
        (MOMENT, "auto", "2026-01-01T00:00:01.235Z"),
        (MOMENT.replace(microsecond=250000), "auto", "2026-01-01T00:00:01.25Z"),
        (MOMENT.replace(microsecond=0), "auto", "2026-01-01T00:00:01Z"),
        (MOMENT, "s", "2026-01-01T00:00:01Z"),
        (MOMENT.replace(microsecond=235999), "ms", "2026-01-01T00:00:01.235Z"),
        (MOMENT.replace(microsecond=0), "ms", "2026-01-01T00:00:01Z"),
        (MOMENT, "us", "2026-01-01T00:00:01.235000Z"),
        (MOMENT.replace(microsecond=0), "us", "2026-01-01T00:00:01.000000Z"),
    ],
)
def test_precisions(moment: datetime, precision: str, text: str) -> None:
    assert format_timestamp(moment, precision) == text  # type: ignore[arg-type]
    assert parse_timestamp(text) is not None


def test_naive_and_offset_times_are_written_in_utc() -> None:
    assert format_timestamp(datetime(2026, 1, 1, 5, 0)) == "2026-01-01T05:00:00Z"
    east = datetime(2026, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_timestamp(east, "s") == "2026-01-01T03:00:00Z"


def test_condition_times_use_the_shared_formatter_at_second_precision() -> None:
    assert format_time(MOMENT) == format_timestamp(MOMENT, "s") == "2026-01-01T00:00:01Z"


def test_repeated_and_alternating_formats_of_one_moment_agree() -> None:
    east = MOMENT.astimezone(timezone(timedelta(hours=2)))
    for _ in range(2):
        assert format_timestamp(MOMENT) == "2026-01-01T00:00:01.235Z"
        assert format_timestamp(MOMENT, "s") == "2026-01-01T00:00:01Z"
        assert format_timestamp(MOMENT, "s") == "2026-01-01T00:00:01Z"
        assert format_timestamp(east, "ms") == "2026-01-01T00:00:01.235Z"


def test_years_before_1000_keep_the_platform_format() -> None:
    early = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert format_timestamp(early, "s") == early.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
