"""``cron``: start a run at each tick of a schedule (``bobrapet.impulses.cron:CronImpulse``).

``spec.with``: ``schedule`` (five cron fields or a macro, required), ``timeZone`` (IANA name,
default ``UTC``), ``concurrencyPolicy`` (``Allow`` | ``Forbid`` | ``Replace``, default
``Allow``), ``startingDeadlineSeconds`` (a tick later than this is not started; default: no
deadline), ``maxCatchUp`` (at most this many ticks missed while not running are started
after a restart, oldest first; when more were missed only the latest is started; default 1).

Invariants:

* Each tick is delivered with key = its scheduled time in RFC 3339 UTC
  (``2026-03-29T07:00:00Z``) and body ``{"scheduledTime", "schedule", "timeZone"}``, so a
  tick delivered twice (a crash between delivery and bookkeeping) starts one run.
* The last handled tick is saved in ``context.state`` as ``{"lastScheduleTime": ...}`` after
  its delivery returned (or it was skipped), never before; a restart continues from it. An
  Impulse without saved state starts from now (ticks before its first start never fire).
* ``Forbid`` skips a tick while any run of this Impulse is active (the tick counts as
  handled); ``Replace`` asks every active run to stop, then starts the new one.
* A failed delivery (or state save) is retried with back-off; ticks that meanwhile pass the
  deadline or the catch-up limit are dropped as after downtime, with a log line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from bobrapet.api.timestamps import format_timestamp, parse_timestamp
from bobrapet.api.types.base import WireModel
from bobrapet.impulses.config import parse_config
from bobrapet.impulses.context import ImpulseContext, ImpulseState, RunControl
from bobrapet.impulses.delivery import Deliver, Delivery
from bobrapet.impulses.pacing import Backoff, describe_error, sleep_or_stop
from bobrapet.impulses.schedule import Schedule

STATE_KEY = "lastScheduleTime"
TOLERANCE = timedelta(milliseconds=5)
"""A tick this close ahead counts as due (timers may fire a little early)."""
MAX_SLEEP = 60.0
"""Longest single sleep, so a wall-clock jump is noticed within a minute."""


class CronConfig(WireModel):
    """``spec.with`` of a ``cron`` Impulse."""

    schedule: str = Field(description="Cron expression (5 fields) or macro such as @hourly.")
    time_zone: str = Field("UTC", description="IANA time zone the schedule is read in.")
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = Field(
        "Allow", description="What to do when a tick comes while a run is still active."
    )
    starting_deadline_seconds: int | None = Field(
        None, ge=1, description="Do not start a tick later than this many seconds after its time."
    )
    max_catch_up: int = Field(
        1, ge=1, le=100, description="Most missed ticks started after downtime; more: only the latest."
    )

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        Schedule(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        Schedule("@hourly", value)
        return value


@dataclass(frozen=True)
class CatchUp:
    """What to do at ``now``: ticks to start in order, and the last tick due (``None``: none)."""

    fire: list[datetime]
    through: datetime | None
    late: bool = False
    """Some due ticks are past the starting deadline."""
    over_limit: bool = False
    """More ticks were due than the catch-up limit."""


def plan_ticks(
    schedule: Schedule, last: datetime, now: datetime, deadline: timedelta | None, limit: int
) -> CatchUp:
    """The ticks in ``(last, now]`` to start, bounded by ``deadline`` and ``limit``."""
    latest = schedule.latest(now)
    if latest <= last:
        return CatchUp([], None)
    after = last
    late = False
    if deadline is not None:
        cutoff = now - deadline
        if latest < cutoff:
            return CatchUp([], latest, late=True)
        late = schedule.next_after(last) < cutoff
        after = max(last, cutoff - timedelta(microseconds=1))
    due = schedule.ticks(after, now, limit + 1)
    if len(due) > limit:
        return CatchUp([latest], latest, late=late, over_limit=True)
    return CatchUp(due, latest, late=late)


class CronImpulse:
    """Deliver one event per tick of ``spec.with.schedule`` (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any] | None, context: ImpulseContext) -> None:
        self.config = parse_config(CronConfig, config, "cron")
        self.context = context
        self.schedule = Schedule(self.config.schedule, self.config.time_zone)
        if context.state is None:
            raise ValueError("CronImpulse needs context.state to remember the last tick across restarts")
        self.state: ImpulseState = context.state
        self.runs: RunControl | None = context.runs
        if self.config.concurrency_policy != "Allow" and self.runs is None:
            raise ValueError(f"concurrencyPolicy {self.config.concurrency_policy} needs context.runs")
        seconds = self.config.starting_deadline_seconds
        self.deadline = None if seconds is None else timedelta(seconds=seconds)

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        clock, log = self.context.clock, self.context.log
        backoff = Backoff()
        last = await self._load_last()
        log.info("cron %r (%s) from %s", self.config.schedule, self.config.time_zone, format_timestamp(last))
        while not stop.is_set():
            now = clock.now() + TOLERANCE
            plan = plan_ticks(self.schedule, last, now, self.deadline, self.config.max_catch_up)
            self._report(plan, last)
            try:
                for tick in plan.fire:
                    if stop.is_set():
                        return
                    await self._start(tick, deliver)
                    last = await self._save(tick)
                if plan.through is not None and plan.through > last:
                    last = await self._save(plan.through)
            except Exception as exc:
                delay = backoff.failed()
                reason = describe_error(exc, None, self.context)
                log.warning("cron: tick not delivered (%s); retrying in %.1fs", reason, delay)
                await sleep_or_stop(clock, delay, stop)
                continue
            backoff.succeeded()
            wait = (self.schedule.next_after(max(last, now)) - clock.now()).total_seconds()
            await sleep_or_stop(clock, min(max(wait, 0.0), MAX_SLEEP), stop)

    async def _load_last(self) -> datetime:
        saved = await self.state.load()
        text = saved.get(STATE_KEY) if saved else None
        last = parse_timestamp(text) if isinstance(text, str) else None
        if last is not None:
            return last
        if saved:
            self.context.log.warning("cron state %r unreadable; starting from now", dict(saved))
        return await self._save(self.context.clock.now())

    async def _save(self, moment: datetime) -> datetime:
        await self.state.save({STATE_KEY: format_timestamp(moment)})
        return moment

    def _report(self, plan: CatchUp, last: datetime) -> None:
        log, since = self.context.log, format_timestamp(last)
        if plan.late:
            log.warning(
                "cron: ticks since %s are more than startingDeadlineSeconds=%s late; not started",
                since,
                self.config.starting_deadline_seconds,
            )
        if plan.over_limit:
            log.warning(
                "cron: more than maxCatchUp=%d ticks missed since %s; starting only the latest (%s)",
                self.config.max_catch_up,
                since,
                format_timestamp(plan.fire[0]),
            )

    async def _start(self, tick: datetime, deliver: Deliver) -> None:
        key = format_timestamp(tick)
        if self.runs is not None and self.config.concurrency_policy != "Allow":
            active = list(await self.runs.active_runs())
            if active and not await self._make_room(key, active):
                return
        delivery = Delivery(
            body={"scheduledTime": key, "schedule": self.config.schedule, "timeZone": self.config.time_zone},
            headers={},
            key=key,
            received_at=self.context.clock.now(),
        )
        self.context.trace(delivery)
        await deliver(delivery)

    async def _make_room(self, key: str, active: Sequence[str]) -> bool:
        """Apply the concurrency policy to ``active`` runs; whether the tick may start."""
        log, names = self.context.log, ", ".join(active)
        if self.config.concurrency_policy == "Forbid":
            log.info("cron tick %s skipped (concurrencyPolicy Forbid): still running: %s", key, names)
            return False
        assert self.runs is not None
        log.info("cron tick %s replaces (concurrencyPolicy Replace): %s", key, names)
        for run in active:
            await self.runs.cancel(run)
        return True
