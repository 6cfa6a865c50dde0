"""Runs one broker impulse in its own process, for the kill -9 redelivery tests.

Usage: python kill_runner.py KIND CONFIG_JSON RECORD_FILE MODE
Each delivery is appended to RECORD_FILE as one JSON line (flushed and fsynced) before anything
else happens. MODE ``hang``: deliver never returns (the test kills the process inside it, so the
message is never acknowledged). MODE ``ok``: deliver returns; SIGTERM stops the runtime gracefully
and the process exits 0 once ``run`` returned.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from bobrapet.impulses.amqp import AmqpImpulse
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Delivery, ImpulseFactory
from bobrapet.impulses.nats import NatsImpulse
from bobrapet.impulses.redis_stream import RedisStreamImpulse

FACTORIES: dict[str, ImpulseFactory] = {
    "nats": NatsImpulse,
    "redis-stream": RedisStreamImpulse,
    "amqp": AmqpImpulse,
}


async def main(kind: str, config: str, record: str, mode: str) -> None:
    runtime = FACTORIES[kind](json.loads(config), ImpulseContext("test", "killed"))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def deliver(delivery: Delivery, /) -> None:
        line = json.dumps({"key": delivery.key, "body": delivery.body, "headers": dict(delivery.headers)})
        with open(record, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if mode == "hang":
            await asyncio.Event().wait()

    await runtime.run(deliver, stop)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
