"""A message whose handling is interrupted by a kill is delivered again, with the same key.

Each broker runtime runs in a subprocess; it is killed with SIGKILL inside ``deliver`` (before
the acknowledgement), started again, delivers the same message with the same key, and is then
stopped with SIGTERM, which must end it cleanly with the message acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import nats
import pytest
from redis.asyncio import Redis
from tests.impulses.support import WAIT, unique

RUNNER = Path(__file__).with_name("kill_runner.py")
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Broker:
    kind: str
    config: dict[str, Any]
    publish: Callable[[bytes], Awaitable[None]]
    unacknowledged: Callable[[], Awaitable[int]]


@contextlib.asynccontextmanager
async def redis_broker() -> AsyncIterator[Broker]:
    client = Redis.from_url("redis://127.0.0.1:6379/0")
    stream, group = unique("bobrapet-kill"), "kill-group"
    await client.xgroup_create(stream, group, id="0", mkstream=True)

    async def publish(body: bytes) -> None:
        await client.xadd(stream, {"data": body})

    async def unacknowledged() -> int:
        return int((await client.xpending(stream, group))["pending"])

    try:
        yield Broker("redis-stream", {"stream": stream, "group": group}, publish, unacknowledged)
    finally:
        await client.delete(stream)
        await client.aclose()


@contextlib.asynccontextmanager
async def nats_broker() -> AsyncIterator[Broker]:
    nc = await nats.connect("nats://127.0.0.1:4222")
    js = nc.jetstream()
    name = unique("BOBRAPET_KILL").replace("-", "_")
    subject = f"{name.lower()}.x"
    await js.add_stream(name=name, subjects=[subject])
    config = {
        "stream": name,
        "subject": subject,
        "durable": "killed",
        "ackWaitSeconds": 1,
        "startFrom": "all",
    }

    async def publish(body: bytes) -> None:
        await js.publish(subject, body)

    async def unacknowledged() -> int:
        info = await js.consumer_info(name, "killed")
        return (info.num_ack_pending or 0) + (info.num_pending or 0)

    try:
        yield Broker("nats", config, publish, unacknowledged)
    finally:
        await js.delete_stream(name)
        await nc.close()


@contextlib.asynccontextmanager
async def amqp_broker() -> AsyncIterator[Broker]:
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    channel = await connection.channel()
    name = unique("bobrapet-kill")
    await channel.declare_queue(name, durable=True)

    async def publish(body: bytes) -> None:
        await channel.default_exchange.publish(aio_pika.Message(body, message_id="kill-1"), routing_key=name)

    async def unacknowledged() -> int:
        declared = await channel.declare_queue(name, passive=True)
        return declared.declaration_result.message_count or 0

    try:
        yield Broker("amqp", {"queue": name}, publish, unacknowledged)
    finally:
        await channel.queue_delete(name)
        await connection.close()


BROKERS = {"redis-stream": redis_broker, "nats": nats_broker, "amqp": amqp_broker}


def start(broker: Broker, record: Path, mode: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [sys.executable, str(RUNNER), broker.kind, json.dumps(broker.config), str(record), mode],
        env=env,
        cwd=REPO,
    )


def lines(record: Path) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line]


async def until_recorded(record: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    async with asyncio.timeout(WAIT):
        while len(lines(record)) < count:
            assert process.poll() is None, f"runner exited with {process.returncode}"
            await asyncio.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(BROKERS))
async def test_a_message_interrupted_by_a_kill_is_delivered_again_with_the_same_key(
    kind: str, tmp_path: Path
) -> None:
    record = tmp_path / "deliveries.jsonl"
    async with BROKERS[kind]() as broker:
        await broker.publish(b'{"job": 42}')
        first = start(broker, record, "hang")
        try:
            await until_recorded(record, 1, first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(WAIT)
        second = start(broker, record, "ok")
        try:
            await until_recorded(record, 2, second)
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, WAIT) == 0
        finally:
            if second.poll() is None:
                second.kill()
        before, after = lines(record)
        assert after == before
        assert before["body"] == {"job": 42} and before["key"]
        assert await broker.unacknowledged() == 0
