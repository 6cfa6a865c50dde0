"""The injectable clocks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bobrapet.runtime.clock import FakeClock, RealClock


async def test_fake_clock_fires_timers_in_order_within_advance() -> None:
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    fired: list[tuple[str, float]] = []
    clock.call_later(2, lambda: fired.append(("b", clock.monotonic())))
    clock.call_later(1, lambda: fired.append(("a", clock.monotonic())))

    def chain() -> None:
        fired.append(("c", clock.monotonic()))
        clock.call_later(0.5, lambda: fired.append(("d", clock.monotonic())))

    clock.call_later(1.5, chain)
    clock.advance(3)
    assert fired == [("a", 1.0), ("c", 1.5), ("b", 2.0), ("d", 2.0)]
    assert clock.now() == datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=3)


async def test_fake_clock_cancel_and_sleep() -> None:
    clock = FakeClock()
    fired: list[int] = []
    handle = clock.call_later(1, lambda: fired.append(1))
    handle.cancel()
    assert clock.pending_timers == 0
    sleeper = asyncio.create_task(clock.sleep(10))
    await asyncio.sleep(0)
    assert clock.next_deadline() == 10
    clock.advance(9)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1)
    await asyncio.wait_for(sleeper, 5)
    assert fired == []
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_real_clock_basics() -> None:
    clock = RealClock()
    assert clock.now().tzinfo is not None
    start = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() >= start
    done = asyncio.Event()
    clock.call_later(0, done.set)
    await asyncio.wait_for(done.wait(), 5)
