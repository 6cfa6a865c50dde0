"""Stop-aware waits, back-off and the reconnect loop of the broker runtimes (fake clock)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from bobrapet.api.errors import Cause
from bobrapet.impulses.config import ImpulseConfigError
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.pacing import Backoff, keep_connected, sleep_or_stop, unless_stopped
from bobrapet.runtime.clock import FakeClock

URL = "amqp://guest:hunter2@127.0.0.1:5672/"


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_backoff_doubles_up_to_its_cap_and_resets_on_success() -> None:
    backoff = Backoff(1.0, 5.0)
    assert [backoff.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.succeeded()
    assert (backoff.failures, backoff.failed()) == (0, 1.0)


async def test_unless_stopped_cancels_the_operation_when_stop_is_set() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever() -> int:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return 1

    waiter = asyncio.create_task(unless_stopped(forever(), stop))
    await settle()
    stop.set()
    assert await waiter is None
    assert cancelled.is_set()
    assert await unless_stopped(asyncio.sleep(0, result=7), asyncio.Event()) == 7


async def test_sleep_or_stop_uses_the_injected_clock() -> None:
    clock, stop = FakeClock(), asyncio.Event()
    sleeper = asyncio.create_task(sleep_or_stop(clock, 10, stop))
    await settle()
    clock.advance(10)
    assert await sleeper is False
    sleeper = asyncio.create_task(sleep_or_stop(clock, 10, stop))
    await settle()
    stop.set()
    assert await sleeper is True


async def test_keep_connected_reconnects_with_growing_delays_and_hides_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, stop = FakeClock(), asyncio.Event()
    context = ImpulseContext("default", "orders", clock=clock)
    attempts: list[float] = []

    async def session(connected: Callable[[], None]) -> None:
        attempts.append(clock.monotonic())
        if len(attempts) <= 3:
            raise ConnectionRefusedError(f"cannot reach {URL}")
        connected()
        await stop.wait()

    with caplog.at_level(logging.WARNING):
        task = asyncio.create_task(keep_connected(session, url=URL, what="amqp", context=context, stop=stop))
        for _ in range(10):
            await settle()
            clock.advance(0.5)
        await settle()
        stop.set()
        await task
    assert attempts == [0.0, 0.5, 1.5, 3.5]  # 0.5 s, then 1 s, then 2 s
    assert "reconnecting in 0.5s" in caplog.text and "amqp://guest:***@127.0.0.1:5672/" in caplog.text
    assert "hunter2" not in caplog.text


async def test_keep_connected_lets_configuration_errors_through() -> None:
    async def session(connected: Callable[[], None]) -> None:
        raise ImpulseConfigError("nats", [Cause("spec.with.stream", "required field is missing")])

    context = ImpulseContext("default", "orders", clock=FakeClock())
    with pytest.raises(ImpulseConfigError, match=r"spec\.with\.stream"):
        await keep_connected(session, url=URL, what="nats", context=context, stop=asyncio.Event())
