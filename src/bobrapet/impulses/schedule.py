"""A cron schedule in a time zone: which instants it fires at (pure; croniter does the maths).

Invariants:

* Expressions have the five standard fields (minute hour day-of-month month day-of-week) or
  are a macro (``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
  ``@yearly``/``@annually``); fields are read in ``time_zone`` (IANA name), ticks are
  returned as aware UTC datetimes, strictly increasing.
* Daylight saving time, as classic cron: a time that does not exist (spring forward) fires at
  the first instant after the gap; a time that happens twice (fall back) fires once when the
  hour is fixed (``30 2 * * *``) and at both instants when the hour is a wildcard
  (``*/30 * * * *`` follows elapsed time).
* A schedule that can never fire (``0 0 30 2 *``) is refused when built.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


class Schedule:
    """``expression`` evaluated in ``time_zone``; raises ``ValueError`` when either is invalid."""

    def __init__(self, expression: str, time_zone: str = "UTC") -> None:
        self.expression = _checked_expression(expression)
        self.time_zone = time_zone
        self.zone = _zone(time_zone)
        self._fixed_hour = croniter(self.expression).expanded[1] != ["*"]
        try:
            self.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except CroniterBadDateError:
            raise ValueError(f"{expression!r} never fires (no such date); check the day and month") from None

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment``."""
        return next(self._after(moment))

    def ticks(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Ticks in ``(after, until]``, the first ``limit`` of them."""
        found: list[datetime] = []
        for tick in self._after(after):
            if tick > until or len(found) >= limit:
                break
            found.append(tick)
        return found

    def latest(self, until: datetime) -> datetime:
        """The last tick at or before ``until``."""
        it = croniter(self.expression, (until + timedelta(seconds=1)).astimezone(self.zone))
        while True:
            tick: datetime = it.get_prev(datetime)
            if tick <= until and not self._repeated(tick):
                return tick.astimezone(UTC)

    def _after(self, moment: datetime) -> Iterator[datetime]:
        it = croniter(self.expression, moment.astimezone(self.zone))
        while True:
            tick: datetime = it.get_next(datetime)
            if not self._repeated(tick):
                yield tick.astimezone(UTC)

    def _repeated(self, tick: datetime) -> bool:
        """The second occurrence of an ambiguous wall time, for a fixed-hour schedule."""
        if not self._fixed_hour or tick.fold != 1:
            return False
        return tick.replace(fold=0).utcoffset() != tick.utcoffset()


def _checked_expression(expression: str) -> str:
    text = " ".join(expression.split())
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise ValueError("must not carry a time zone; put it in timeZone (e.g. timeZone: Europe/Berlin)")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ValueError(f"unknown macro {text!r}; use one of {', '.join(MACROS)}")
        return text.lower()
    if len(text.split()) != 5:
        raise ValueError(
            "must have 5 fields (minute hour day-of-month month day-of-week), "
            f"e.g. '*/5 * * * *'; got {text!r}"
        )
    try:
        valid = croniter.is_valid(text)
    except CroniterError:
        valid = False
    if not valid:
        raise ValueError(f"{text!r} is not a valid cron expression (e.g. '0 9 * * mon-fri')")
    return text


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
