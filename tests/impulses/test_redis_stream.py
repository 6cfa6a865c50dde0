"""The redis-stream impulse against the Redis server on 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from tests.impulses.support import WAIT, Recorder, TcpProxy, running, unique

from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.redis_stream import RedisStreamImpulse

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    redis = Redis.from_url(URL)
    yield redis
    await redis.aclose()


@pytest.fixture
async def stream(client: Redis) -> AsyncIterator[str]:
    name = unique("bobrapet-test-stream")
    yield name
    await client.delete(name)


def impulse(stream: str, **config: Any) -> RedisStreamImpulse:
    return RedisStreamImpulse(
        {"url": URL, "stream": stream, "startFrom": "all", **config}, ImpulseContext("test", unique("imp"))
    )


async def pending(client: Redis, runtime: RedisStreamImpulse) -> int:
    summary = await client.xpending(runtime.stream, runtime.group)
    return int(summary["pending"])


async def until_acknowledged(client: Redis, runtime: RedisStreamImpulse) -> None:
    async with asyncio.timeout(WAIT):
        while await pending(client, runtime):
            await asyncio.sleep(0.02)


async def test_entries_become_deliveries_and_are_acknowledged(client: Redis, stream: str) -> None:
    first = (await client.xadd(stream, {"data": '{"order": 7}', "source": "shop"})).decode()
    second = (await client.xadd(stream, {"a": "1", "b": "two"})).decode()
    third = (await client.xadd(stream, {"data": "not json"})).decode()
    runtime, recorder = impulse(stream), Recorder()
    async with running(runtime, recorder):
        await recorder.wait_for(3)
    one, two, three = recorder.deliveries
    assert (one.key, one.body, dict(one.headers)) == (first, {"order": 7}, {"source": "shop"})
    assert (two.key, two.body, dict(two.headers)) == (second, {"a": "1", "b": "two"}, {})
    assert (three.key, three.body) == (third, "not json")
    assert await pending(client, runtime) == 0


async def test_a_failed_delivery_stays_pending_and_is_delivered_again(client: Redis, stream: str) -> None:
    entry = (await client.xadd(stream, {"data": "{}"})).decode()
    runtime, recorder = impulse(stream), Recorder(fail=1)
    async with running(runtime, recorder):
        await recorder.wait_for(1)
    assert [d.key for d in recorder.attempts] == [entry, entry]
    assert recorder.keys == [entry]
    assert await pending(client, runtime) == 0


async def test_stop_finishes_the_delivery_in_flight_then_returns(client: Redis, stream: str) -> None:
    entry = (await client.xadd(stream, {"data": "1"})).decode()
    runtime, recorder = impulse(stream), Recorder()
    recorder.gate = asyncio.Event()
    async with running(runtime, recorder) as stop:
        async with asyncio.timeout(WAIT):
            await recorder.entered.wait()
        stop.set()
        await asyncio.sleep(0.1)
        assert await pending(client, runtime) == 1  # not acknowledged while deliver runs
        recorder.gate.set()
    assert recorder.keys == [entry]
    assert await pending(client, runtime) == 0


async def test_a_new_group_starts_after_the_existing_entries(client: Redis, stream: str) -> None:
    await client.xadd(stream, {"data": '"old"'})
    runtime, recorder = impulse(stream, startFrom="new"), Recorder()
    async with running(runtime, recorder):
        async with asyncio.timeout(WAIT):
            while not any(g["name"].decode() == runtime.group for g in await client.xinfo_groups(stream)):
                await asyncio.sleep(0.05)
        await client.xadd(stream, {"data": '"new"'})
        await recorder.wait_for(1)
    assert [d.body for d in recorder.deliveries] == ["new"]


async def test_entries_of_a_dead_consumer_are_claimed_and_delivered(client: Redis, stream: str) -> None:
    runtime, recorder = impulse(stream, claimIdleSeconds=1), Recorder()
    await client.xgroup_create(stream, runtime.group, id="0", mkstream=True)
    entry = (await client.xadd(stream, {"data": '{"n": 1}'})).decode()
    await client.xreadgroup(runtime.group, "dead-consumer", {stream: ">"})  # read, never acknowledged
    async with running(runtime, recorder):
        await recorder.wait_for(1)
    assert recorder.keys == [entry]
    assert await pending(client, runtime) == 0


async def test_the_runtime_survives_the_broker_going_away(client: Redis, stream: str) -> None:
    proxy = await TcpProxy(6379).start()
    runtime = RedisStreamImpulse(
        {"url": f"redis://127.0.0.1:{proxy.port}/0", "stream": stream, "startFrom": "all"},
        ImpulseContext("test", unique("imp")),
    )
    recorder = Recorder()
    try:
        async with running(runtime, recorder):
            await client.xadd(stream, {"data": "1"})
            await recorder.wait_for(1)
            await until_acknowledged(client, runtime)
            await proxy.cut()
            await client.xadd(stream, {"data": "2"})
            await asyncio.sleep(1.5)  # the runtime fails to reconnect meanwhile
            await proxy.restore()
            await recorder.wait_for(2)
    finally:
        await proxy.close()
    assert [d.body for d in recorder.deliveries] == [1, 2]
    assert proxy.connections >= 2
