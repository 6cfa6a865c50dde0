"""The cron impulse on a fake clock: ticks, time zones, concurrency policies, catch-up, state."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.impulses.support import FakeRuns, MemoryState, Recorder

from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.cron import CronImpulse
from bobrapet.runtime.clock import FakeClock


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


class Cron:
    """A CronImpulse on a fake clock with in-memory state and run control."""

    def __init__(
        self,
        config: dict[str, Any],
        start: datetime,
        *,
        state: MemoryState | None = None,
        active: tuple[str, ...] = (),
        fail: int = 0,
        debug: bool = False,
    ) -> None:
        self.clock = FakeClock(start)
        self.recorder = Recorder(fail=fail)
        self.state = state if state is not None else MemoryState()
        self.runs = FakeRuns(self.recorder.events, active)
        self.context = ImpulseContext(
            "default", "nightly", clock=self.clock, state=self.state, runs=self.runs, debug=debug
        )
        self.runtime = CronImpulse(config, self.context)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Cron:
        self.task = asyncio.create_task(self.runtime.run(self.recorder, self.stop))
        await settle()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.task is not None
        async with asyncio.timeout(5):
            await self.task

    async def advance_to(self, moment: datetime) -> None:
        """Move the clock to ``moment`` timer by timer, letting the runtime act at each one."""
        while True:
            await settle()
            remaining = (moment - self.clock.now()).total_seconds()
            if remaining <= 0:
                return
            deadline = self.clock.next_deadline()
            step = remaining if deadline is None else min(remaining, deadline - self.clock.monotonic())
            self.clock.advance(max(step, 0.0))

    @property
    def keys(self) -> list[str | None]:
        return self.recorder.keys


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


async def test_ticks_follow_local_time_across_the_spring_dst_change() -> None:
    async with Cron({"schedule": "0 9 * * *", "timeZone": "Europe/Berlin"}, at("2026-03-27T12:00:00Z")) as c:
        await c.advance_to(at("2026-03-31T00:00:00Z"))
    # 09:00 in Berlin is 08:00Z before the change (CET) and 07:00Z after it (CEST)
    assert c.keys == ["2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"]


async def test_a_repeated_local_time_fires_once_in_autumn() -> None:
    async with Cron({"schedule": "30 2 * * *", "timeZone": "Europe/Berlin"}, at("2026-10-23T12:00:00Z")) as c:
        await c.advance_to(at("2026-10-27T00:00:00Z"))
    # 02:30 happens twice on 2026-10-25 (CEST then CET): one run, at the first one
    assert c.keys == ["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]


async def test_a_tick_delivers_its_scheduled_time_as_key_and_body() -> None:
    async with Cron({"schedule": "*/15 * * * *"}, at("2026-05-01T10:05:00Z")) as c:
        await c.advance_to(at("2026-05-01T10:20:00Z"))
    [delivery] = c.recorder.deliveries
    assert delivery.key == "2026-05-01T10:15:00Z"
    assert delivery.body == {
        "scheduledTime": "2026-05-01T10:15:00Z",
        "schedule": "*/15 * * * *",
        "timeZone": "UTC",
    }
    assert delivery.headers == {}
    assert delivery.received_at == at("2026-05-01T10:15:00Z")


async def test_a_first_start_does_not_fire_past_ticks_and_records_its_start() -> None:
    async with Cron({"schedule": "@hourly"}, at("2026-05-01T10:30:00Z")) as c:
        assert c.keys == []
        assert c.state.value == {"lastScheduleTime": "2026-05-01T10:30:00Z"}
        await c.advance_to(at("2026-05-01T11:00:00Z"))
        assert c.keys == ["2026-05-01T11:00:00Z"]
        assert c.state.value == {"lastScheduleTime": "2026-05-01T11:00:00Z"}


async def test_allow_starts_while_runs_are_active() -> None:
    async with Cron({"schedule": "@hourly"}, at("2026-05-01T10:30:00Z"), active=("r1",)) as c:
        await c.advance_to(at("2026-05-01T11:00:00Z"))
    assert c.keys == ["2026-05-01T11:00:00Z"]
    assert c.runs.cancelled == []


async def test_forbid_skips_a_tick_while_a_run_is_active() -> None:
    config = {"schedule": "@hourly", "concurrencyPolicy": "Forbid"}
    async with Cron(config, at("2026-05-01T10:30:00Z"), active=("nightly-r1",)) as c:
        await c.advance_to(at("2026-05-01T11:00:00Z"))
        assert c.keys == []
        assert c.state.value == {"lastScheduleTime": "2026-05-01T11:00:00Z"}  # handled: skipped
        c.runs.active = []
        await c.advance_to(at("2026-05-01T12:00:00Z"))
    assert c.keys == ["2026-05-01T12:00:00Z"]
    assert c.runs.cancelled == []


async def test_replace_cancels_active_runs_before_starting() -> None:
    config = {"schedule": "@hourly", "concurrencyPolicy": "Replace"}
    async with Cron(config, at("2026-05-01T10:30:00Z"), active=("r1", "r2")) as c:
        await c.advance_to(at("2026-05-01T11:00:00Z"))
    assert c.recorder.events == ["cancel r1", "cancel r2", "deliver 2026-05-01T11:00:00Z"]


async def test_catch_up_after_downtime_starts_missed_ticks_in_order_up_to_the_limit() -> None:
    state = MemoryState({"lastScheduleTime": "2026-05-01T08:00:00Z"})
    config = {"schedule": "@hourly", "maxCatchUp": 5}
    async with Cron(config, at("2026-05-01T11:30:00Z"), state=state) as c:
        assert c.keys == ["2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z"]
        assert state.value == {"lastScheduleTime": "2026-05-01T11:00:00Z"}


async def test_too_many_missed_ticks_start_only_the_latest(caplog: pytest.LogCaptureFixture) -> None:
    state = MemoryState({"lastScheduleTime": "2026-04-01T00:00:00Z"})
    with caplog.at_level(logging.WARNING):
        async with Cron({"schedule": "*/5 * * * *"}, at("2026-05-01T11:32:00Z"), state=state) as c:
            assert c.keys == ["2026-05-01T11:30:00Z"]
    assert "more than maxCatchUp=1 ticks missed since 2026-04-01T00:00:00Z" in caplog.text


async def test_starting_deadline_drops_ticks_that_are_too_late(caplog: pytest.LogCaptureFixture) -> None:
    state = MemoryState({"lastScheduleTime": "2026-05-01T06:00:00Z"})
    config = {"schedule": "*/20 * * * *", "startingDeadlineSeconds": 2700, "maxCatchUp": 10}
    with caplog.at_level(logging.WARNING):
        async with Cron(config, at("2026-05-01T11:30:00Z"), state=state) as c:
            # only ticks at most 45 minutes late are started
            assert c.keys == ["2026-05-01T11:00:00Z", "2026-05-01T11:20:00Z"]
    assert "more than startingDeadlineSeconds=2700 late" in caplog.text


async def test_all_missed_ticks_past_the_deadline_start_nothing_but_are_recorded() -> None:
    state = MemoryState({"lastScheduleTime": "2026-05-01T06:00:00Z"})
    config = {"schedule": "0 7 * * *", "startingDeadlineSeconds": 60}
    async with Cron(config, at("2026-05-01T11:30:00Z"), state=state) as c:
        assert c.keys == []
        assert state.value == {"lastScheduleTime": "2026-05-01T07:00:00Z"}


async def test_the_last_tick_survives_a_restart() -> None:
    state = MemoryState()
    async with Cron({"schedule": "@hourly"}, at("2026-05-01T10:30:00Z"), state=state) as first:
        await first.advance_to(at("2026-05-01T11:10:00Z"))
    assert first.keys == ["2026-05-01T11:00:00Z"]
    # restarted before the next tick: nothing is repeated; the next tick fires once
    async with Cron({"schedule": "@hourly"}, at("2026-05-01T11:20:00Z"), state=state) as second:
        assert second.keys == []
        await second.advance_to(at("2026-05-01T12:00:00Z"))
    assert second.keys == ["2026-05-01T12:00:00Z"]
    # down across a tick: it is caught up once at the restart
    async with Cron({"schedule": "@hourly"}, at("2026-05-01T13:05:00Z"), state=state) as third:
        assert third.keys == ["2026-05-01T13:00:00Z"]


async def test_a_failed_delivery_is_retried_with_the_same_key_before_recording_the_tick() -> None:
    async with Cron({"schedule": "@hourly"}, at("2026-05-01T10:30:00Z"), fail=2) as c:
        await c.advance_to(at("2026-05-01T11:00:00Z"))
        assert c.keys == []
        assert c.state.value == {"lastScheduleTime": "2026-05-01T10:30:00Z"}
        await c.advance_to(at("2026-05-01T11:00:10Z"))  # back-off: 1 s, then 2 s
    assert [d.key for d in c.recorder.attempts] == ["2026-05-01T11:00:00Z"] * 3
    assert c.keys == ["2026-05-01T11:00:00Z"]
    assert c.state.value == {"lastScheduleTime": "2026-05-01T11:00:00Z"}


async def test_stop_ends_a_sleeping_runtime_at_once() -> None:
    c = Cron({"schedule": "@yearly"}, at("2026-05-01T10:30:00Z"))
    async with c:
        pass  # __aexit__ requires run() to return without the clock moving
    assert c.task is not None and c.task.done() and c.task.exception() is None


async def test_debug_logs_a_preview_of_each_delivery(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bobrapet.impulses"):
        async with Cron({"schedule": "@hourly"}, at("2026-05-01T10:30:00Z"), debug=True) as c:
            await c.advance_to(at("2026-05-01T11:00:00Z"))
    assert (
        'delivery key=2026-05-01T11:00:00Z headers={} body={"scheduledTime":"2026-05-01T11:00:00Z"'
        in caplog.text
    )


def test_cron_needs_state_and_run_control_for_its_policies() -> None:
    with pytest.raises(ValueError, match=r"needs context\.state"):
        CronImpulse({"schedule": "@hourly"}, ImpulseContext("default", "nightly"))
    context = ImpulseContext("default", "nightly", state=MemoryState())
    with pytest.raises(ValueError, match=r"concurrencyPolicy Forbid needs context\.runs"):
        CronImpulse({"schedule": "@hourly", "concurrencyPolicy": "Forbid"}, context)
    assert CronImpulse({"schedule": "@hourly"}, context).config.concurrency_policy == "Allow"


async def test_the_clock_never_fires_a_tick_early() -> None:
    async with Cron({"schedule": "@hourly"}, at("2026-05-01T10:30:00Z")) as c:
        await c.advance_to(at("2026-05-01T10:59:59Z"))
        assert c.keys == []
        await c.advance_to(at("2026-05-01T11:00:00Z") + timedelta(microseconds=1))
        assert c.keys == ["2026-05-01T11:00:00Z"]
