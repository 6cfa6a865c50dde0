"""The nats (JetStream) impulse against the NATS server on 127.0.0.1:4222."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from tests.impulses.support import WAIT, Recorder, TcpProxy, running, unique

from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.nats import NatsImpulse

URL = "nats://127.0.0.1:4222"


class Stream:
    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.name = unique("BOBRAPET_TEST").replace("-", "_")
        self.subject = f"{self.name.lower()}.events"

    def impulse(self, url: str = URL, **config: Any) -> NatsImpulse:
        base = {"url": url, "stream": self.name, "subject": self.subject, "startFrom": "all"}
        return NatsImpulse({**base, **config}, ImpulseContext("test", unique("imp")))

    async def unacknowledged(self, runtime: NatsImpulse) -> tuple[int, int]:
        info = await self.js.consumer_info(self.name, runtime.durable)
        return info.num_ack_pending or 0, info.num_pending or 0


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    nc = await nats.connect(URL)
    yield nc
    await nc.close()


@pytest.fixture
async def stream(client: Client) -> AsyncIterator[Stream]:
    s = Stream(client.jetstream())
    await s.js.add_stream(name=s.name, subjects=[s.subject])
    yield s
    with contextlib.suppress(NotFoundError):
        await s.js.delete_stream(s.name)


async def test_messages_become_deliveries_and_are_acknowledged(stream: Stream) -> None:
    await stream.js.publish(
        stream.subject, b'{"order": 7}', headers={"Nats-Msg-Id": "order-7", "X-Trace": "abc"}
    )
    await stream.js.publish(stream.subject, b"hello")
    runtime, recorder = stream.impulse(), Recorder()
    async with running(runtime, recorder):
        await recorder.wait_for(2)
    one, two = recorder.deliveries
    assert (one.key, one.body, dict(one.headers)) == (
        "order-7",
        {"order": 7},
        {"Nats-Msg-Id": "order-7", "X-Trace": "abc"},
    )
    assert (two.key, two.body, dict(two.headers)) == (f"{stream.name}:2", "hello", {})
    assert await stream.unacknowledged(runtime) == (0, 0)


async def test_a_failed_delivery_is_redelivered_later(stream: Stream) -> None:
    await stream.js.publish(stream.subject, b"{}")
    runtime, recorder = stream.impulse(), Recorder(fail=1)
    async with running(runtime, recorder):
        await recorder.wait_for(1)
    key = f"{stream.name}:1"
    assert [d.key for d in recorder.attempts] == [key, key]
    assert await stream.unacknowledged(runtime) == (0, 0)


async def test_stop_finishes_the_delivery_in_flight_then_returns(stream: Stream) -> None:
    await stream.js.publish(stream.subject, b"1")
    runtime, recorder = stream.impulse(), Recorder()
    recorder.gate = asyncio.Event()
    async with running(runtime, recorder) as stop:
        async with asyncio.timeout(WAIT):
            await recorder.entered.wait()
        stop.set()
        await asyncio.sleep(0.1)
        assert await stream.unacknowledged(runtime) == (1, 0)
        recorder.gate.set()
    assert recorder.keys == [f"{stream.name}:1"]
    assert await stream.unacknowledged(runtime) == (0, 0)


async def test_the_stream_and_the_durable_are_created_when_missing(client: Client) -> None:
    js = client.jetstream()
    name = unique("BOBRAPET_NEW").replace("-", "_")
    runtime = NatsImpulse(
        {"stream": name, "subject": f"{name.lower()}.x", "durable": "worker"}, ImpulseContext("test", "imp")
    )
    recorder = Recorder()
    try:
        async with running(runtime, recorder):
            async with asyncio.timeout(WAIT):
                while True:
                    try:
                        await js.consumer_info(name, "worker")
                        break
                    except NotFoundError:
                        await asyncio.sleep(0.05)
            await js.publish(f"{name.lower()}.x", b'"created"')
            await recorder.wait_for(1)
        info = await js.consumer_info(name, "worker")
        assert (info.config.filter_subject, info.config.ack_wait, info.config.max_deliver) == (
            f"{name.lower()}.x",
            30,
            -1,
        )
    finally:
        await js.delete_stream(name)
    assert recorder.deliveries[0].body == "created"


async def test_the_runtime_survives_the_broker_going_away(stream: Stream) -> None:
    proxy = await TcpProxy(4222).start()
    runtime, recorder = stream.impulse(url=f"nats://127.0.0.1:{proxy.port}"), Recorder()
    try:
        async with running(runtime, recorder):
            await stream.js.publish(stream.subject, b"1")
            await recorder.wait_for(1)
            async with asyncio.timeout(WAIT):
                while (await stream.unacknowledged(runtime))[0]:
                    await asyncio.sleep(0.02)
            await proxy.cut()
            await stream.js.publish(stream.subject, b"2")
            await asyncio.sleep(1.5)
            await proxy.restore()
            await recorder.wait_for(2)
    finally:
        await proxy.close()
    assert [d.body for d in recorder.deliveries] == [1, 2]
    assert proxy.connections >= 2
