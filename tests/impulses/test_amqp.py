"""The amqp impulse against the RabbitMQ server on 127.0.0.1:5672."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel
from tests.impulses.support import WAIT, Recorder, TcpProxy, running, unique

from bobrapet.impulses.amqp import AmqpImpulse
from bobrapet.impulses.context import ImpulseContext

URL = "amqp://guest:guest@127.0.0.1:5672/"


class Queue:
    def __init__(self, channel: AbstractChannel) -> None:
        self.channel = channel
        self.name = unique("bobrapet-test-queue")

    def impulse(self, url: str = URL) -> AmqpImpulse:
        return AmqpImpulse({"url": url, "queue": self.name}, ImpulseContext("test", unique("imp")))

    async def publish(self, body: bytes, **properties: Any) -> None:
        await self.channel.default_exchange.publish(
            aio_pika.Message(body, **properties), routing_key=self.name
        )

    async def ready(self) -> int:
        """Messages in the queue not delivered to a consumer (unacknowledged ones come back on close)."""
        declared = await self.channel.declare_queue(self.name, passive=True)
        assert declared.declaration_result.message_count is not None
        return declared.declaration_result.message_count


@pytest.fixture
async def queue() -> AsyncIterator[Queue]:
    connection = await aio_pika.connect(URL)
    channel = await connection.channel()
    q = Queue(channel)
    await channel.declare_queue(q.name, durable=True)
    yield q
    await channel.queue_delete(q.name)
    await connection.close()


async def test_messages_become_deliveries_and_are_acknowledged(queue: Queue) -> None:
    await queue.publish(b'{"order": 7}', message_id="order-7", headers={"x-trace": "abc", "x-n": 5})
    await queue.publish(b"hello", message_id="greeting")
    runtime, recorder = queue.impulse(), Recorder()
    async with running(runtime, recorder):
        await recorder.wait_for(2)
    one, two = recorder.deliveries
    assert (one.key, one.body, dict(one.headers)) == ("order-7", {"order": 7}, {"x-trace": "abc", "x-n": "5"})
    assert (two.key, two.body, dict(two.headers)) == ("greeting", "hello", {})
    assert await queue.ready() == 0


def test_without_a_message_id_the_key_is_the_sha256_of_the_body() -> None:
    # aio-pika always sets a message id when publishing; other clients may not
    message: Any = SimpleNamespace(message_id=None, body=b"hello", headers={})
    delivery = AmqpImpulse({"queue": "q"}, ImpulseContext("test", "imp"))._delivery(message)
    assert (delivery.key, delivery.body) == (hashlib.sha256(b"hello").hexdigest(), "hello")


async def test_a_failed_delivery_is_requeued_and_delivered_again(queue: Queue) -> None:
    await queue.publish(b"{}", message_id="m-1")
    runtime, recorder = queue.impulse(), Recorder(fail=1)
    async with running(runtime, recorder):
        await recorder.wait_for(1)
    assert [d.key for d in recorder.attempts] == ["m-1", "m-1"]
    assert await queue.ready() == 0


async def test_stop_finishes_the_delivery_in_flight_then_returns(queue: Queue) -> None:
    await queue.publish(b"1", message_id="m-1")
    await queue.publish(b"2", message_id="m-2")
    runtime, recorder = queue.impulse(), Recorder()
    recorder.gate = asyncio.Event()
    async with running(runtime, recorder) as stop:
        async with asyncio.timeout(WAIT):
            await recorder.entered.wait()
        stop.set()
        await asyncio.sleep(0.1)
        recorder.gate.set()
    assert recorder.keys == ["m-1"]  # the second message was prefetched, not delivered: requeued
    assert await queue.ready() == 1


async def test_a_missing_queue_is_declared_durable() -> None:
    connection = await aio_pika.connect(URL)
    channel = await connection.channel()
    name = unique("bobrapet-new-queue")
    runtime = AmqpImpulse({"queue": name}, ImpulseContext("test", "imp"))
    recorder = Recorder()
    try:
        async with running(runtime, recorder):
            async with asyncio.timeout(WAIT):
                while True:
                    probe = await connection.channel()
                    try:
                        declared = await probe.declare_queue(name, passive=True)
                        break
                    except aio_pika.exceptions.ChannelNotFoundEntity:
                        await asyncio.sleep(0.05)
            assert declared.durable is not None
            await channel.default_exchange.publish(aio_pika.Message(b'"created"'), routing_key=name)
            await recorder.wait_for(1)
    finally:
        await channel.queue_delete(name)
        await connection.close()
    assert recorder.deliveries[0].body == "created"


async def test_the_runtime_survives_the_broker_going_away(queue: Queue) -> None:
    proxy = await TcpProxy(5672).start()
    runtime, recorder = queue.impulse(url=f"amqp://guest:guest@127.0.0.1:{proxy.port}/"), Recorder()
    try:
        async with running(runtime, recorder):
            await queue.publish(b"1", message_id="m-1")
            await recorder.wait_for(1)
            await asyncio.sleep(0.2)  # let the ack reach the broker before the cut
            await proxy.cut()
            await queue.publish(b"2", message_id="m-2")
            await asyncio.sleep(1.5)
            await proxy.restore()
            await recorder.wait_for(2)
    finally:
        await proxy.close()
    assert recorder.keys[-1] == "m-2"
    assert set(recorder.keys) == {"m-1", "m-2"}
    assert proxy.connections >= 2
