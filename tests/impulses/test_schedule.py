"""Cron schedules in time zones (pure): DST gaps and repeats, macros, refused expressions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bobrapet.impulses.schedule import Schedule


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(ticks: list[datetime]) -> list[str]:
    return [t.strftime("%Y-%m-%dT%H:%M") for t in ticks]


def test_ticks_are_utc_and_strictly_after_the_start() -> None:
    s = Schedule("0 * * * *")
    assert s.next_after(utc("2026-01-01T10:00:00")) == utc("2026-01-01T11:00:00")
    assert s.ticks(utc("2026-01-01T10:00:00"), utc("2026-01-01T12:00:00"), 10) == [
        utc("2026-01-01T11:00:00"),
        utc("2026-01-01T12:00:00"),
    ]
    assert s.ticks(utc("2026-01-01T10:00:00"), utc("2026-01-01T23:00:00"), 3)[-1] == utc(
        "2026-01-01T13:00:00"
    )


def test_latest_is_at_or_before() -> None:
    s = Schedule("*/10 * * * *")
    assert s.latest(utc("2026-01-01T10:20:00")) == utc("2026-01-01T10:20:00")
    assert s.latest(utc("2026-01-01T10:29:59")) == utc("2026-01-01T10:20:00")


def test_a_local_time_skipped_in_spring_fires_right_after_the_gap() -> None:
    # Berlin jumps from 02:00 CET to 03:00 CEST on 2026-03-29 (01:00Z)
    s = Schedule("30 2 * * *", "Europe/Berlin")
    assert iso(s.ticks(utc("2026-03-27T12:00:00"), utc("2026-03-30T12:00:00"), 10)) == [
        "2026-03-28T01:30",
        "2026-03-29T01:00",
        "2026-03-30T00:30",
    ]


def test_wildcard_hours_follow_elapsed_time_through_both_dst_changes() -> None:
    s = Schedule("30 * * * *", "Europe/Berlin")
    spring = iso(s.ticks(utc("2026-03-28T23:45:00"), utc("2026-03-29T02:45:00"), 10))
    assert spring == ["2026-03-29T00:30", "2026-03-29T01:30", "2026-03-29T02:30"]
    autumn = iso(s.ticks(utc("2026-10-24T23:45:00"), utc("2026-10-25T02:45:00"), 10))
    assert autumn == ["2026-10-25T00:30", "2026-10-25T01:30", "2026-10-25T02:30"]  # 02:30 local twice


def test_a_fixed_hour_repeated_in_autumn_fires_once() -> None:
    s = Schedule("30 1 * * *", "America/New_York")  # 01:30 happens at 05:30Z and 06:30Z on 2026-11-01
    assert iso(s.ticks(utc("2026-10-31T12:00:00"), utc("2026-11-02T12:00:00"), 10)) == [
        "2026-11-01T05:30",
        "2026-11-02T06:30",
    ]
    assert s.latest(utc("2026-11-01T07:00:00")) == utc("2026-11-01T05:30:00")


def test_macros() -> None:
    assert Schedule("@daily", "Asia/Tokyo").next_after(utc("2026-01-01T00:00:00")) == utc(
        "2026-01-01T15:00:00"
    )
    assert Schedule("@HOURLY").expression == "@hourly"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "is not a valid cron expression"),
        ("* * * * * *", "must have 5 fields"),
        ("", "must have 5 fields"),
        ("@reboot", "unknown macro '@reboot'"),
        ("TZ=Europe/Berlin 0 * * * *", "put it in timeZone"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_refused_expressions(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Schedule(expression)


def test_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        Schedule("@hourly", "Mars/Olympus")
