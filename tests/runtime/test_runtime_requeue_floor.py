"""Reference §9.1: "the minimum requeue delay anywhere is 10ms" — no hot requeue loops."""

from __future__ import annotations

import asyncio

from bobrapet.api.kinds import STORY
from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.controller import MIN_REQUEUE_DELAY, Controller
from bobrapet.runtime.request import Request, Result

A = Request("ns", "a")


async def test_tiny_requeue_after_is_raised_to_the_floor() -> None:
    clock = FakeClock()
    calls: list[float] = []

    async def reconcile(request: Request) -> Result:
        calls.append(clock.monotonic())
        return Result(requeue_after=0.0001) if len(calls) == 1 else Result()

    c = Controller("t", STORY, reconcile, clock=clock)
    c.start()
    try:
        c.enqueue(A)
        for _ in range(1000):
            if calls and c.in_flight == 0:
                break
            await asyncio.sleep(0)
        assert MIN_REQUEUE_DELAY == 0.01
        assert c.queue.waiting == {A: MIN_REQUEUE_DELAY}
        clock.advance(0.005)
        await asyncio.sleep(0)
        assert len(calls) == 1, "not requeued before the 10 ms floor"
        clock.advance(0.005)
        for _ in range(1000):
            if len(calls) == 2 and c.is_idle():
                break
            await asyncio.sleep(0)
        assert calls == [0.0, 0.01]
    finally:
        await c.stop(grace=1)
