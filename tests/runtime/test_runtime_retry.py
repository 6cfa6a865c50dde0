"""retry_on_conflict."""

from __future__ import annotations

import asyncio

import pytest

from bobrapet.api.errors import Conflict, NotFound
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.retry import is_conflict, retry_on_conflict


async def test_retries_conflicts_until_success() -> None:
    calls: list[int] = []

    async def fn() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise Conflict("Story", "s", "the object has been modified")
        return "ok"

    assert await retry_on_conflict(fn, 5) == "ok"
    assert len(calls) == 3


async def test_last_conflict_propagates_and_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    async def always() -> None:
        calls.append(1)
        raise Conflict("Story", "s", "modified")

    with pytest.raises(Conflict):
        await retry_on_conflict(always, 3)
    assert len(calls) == 3

    async def missing() -> None:
        calls.append(2)
        raise NotFound("Story", "s")

    with pytest.raises(NotFound):
        await retry_on_conflict(missing, 3)
    assert calls.count(2) == 1
    assert is_conflict(Conflict("Story", "s", "x")) and not is_conflict(NotFound("Story", "s"))
    with pytest.raises(ValueError):
        await retry_on_conflict(always, 0)


async def test_backoff_sleeps_on_the_given_clock() -> None:
    clock = FakeClock()
    calls: list[float] = []

    async def fn() -> None:
        calls.append(clock.monotonic())
        if len(calls) < 3:
            raise Conflict("Story", "s", "modified")

    task = asyncio.create_task(retry_on_conflict(fn, 5, clock=clock, delay=1.0))
    for _ in range(10):
        await asyncio.sleep(0)
    clock.advance(1)
    for _ in range(10):
        await asyncio.sleep(0)
    clock.advance(2)
    await asyncio.wait_for(task, 5)
    assert calls == [0.0, 1.0, 3.0]
