"""Go-style duration parsing and formatting."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bobrapet.api.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("2s", timedelta(seconds=2)),
        ("1.5h", timedelta(minutes=90)),
        ("0", timedelta(0)),
        ("-1s", timedelta(seconds=-1)),
        ("+3m", timedelta(minutes=3)),
        ("1us", timedelta(microseconds=1)),
        ("1µs", timedelta(microseconds=1)),
        ("1500ns", timedelta(microseconds=2)),
        ("1h1m1s1ms", timedelta(hours=1, minutes=1, seconds=1, milliseconds=1)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("5", "missing unit after '5'"),
        ("1x", "unknown unit 'x'"),
        ("abc", "expected a number"),
        ("1h-1m", "expected a number"),
        ("-", "use a number followed by a unit"),
    ],
)
def test_parse_errors_say_how_to_fix(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert fragment in str(info.value)
    assert 'e.g. "30s"' in str(info.value)


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=65), "1m5s"),
        (timedelta(hours=1), "1h0m0s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(microseconds=3), "3µs"),
        (timedelta(seconds=-90), "-1m30s"),
    ],
)
def test_format(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


@given(st.timedeltas(min_value=timedelta(days=-3000), max_value=timedelta(days=3000)))
def test_round_trip(td: timedelta) -> None:
    assert parse_duration(format_duration(td)) == td
