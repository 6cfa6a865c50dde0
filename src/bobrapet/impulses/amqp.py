"""``amqp``: start a run per RabbitMQ message (``bobrapet.impulses.amqp:AmqpImpulse``).

``spec.with``: ``url`` (default ``amqp://guest:guest@127.0.0.1:5672/``), ``queue`` (required).

Invariants:

* What is created when missing: the queue, as a durable classic queue (an existing queue is
  used as it is, whatever its type and arguments).
* A delivery's key is the ``message_id`` property, else the SHA-256 (hex) of the body; its
  headers are the message's headers (values as text); its body is the payload's JSON value
  (else its text).
* A message is acknowledged only after ``deliver`` returned. When ``deliver`` raises, the
  message is rejected with requeue (``basic.nack``, it goes back to the queue) and
  consumption pauses (exponential back-off, 1 s doubling to 60 s) before the next message.
  Messages not acknowledged when the connection ends (a kill, a broker restart, ``stop``) are
  requeued by the broker.
* A lost connection or channel restarts the session with back-off. ``stop`` is seen at once
  when idle, otherwise after the message in flight is done.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue
from aio_pika.exceptions import ChannelNotFoundEntity
from pydantic import Field, field_validator

from bobrapet.api.types.base import WireModel
from bobrapet.impulses.config import check_url, parse_config
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Deliver, Delivery
from bobrapet.impulses.pacing import Backoff, describe_error, keep_connected, sleep_or_stop, unless_stopped
from bobrapet.impulses.payload import decode_body, text_headers

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
PREFETCH = 16


class AmqpConfig(WireModel):
    """``spec.with`` of an ``amqp`` Impulse."""

    url: str = Field(DEFAULT_URL, description="AMQP 0-9-1 URL of the broker.")
    queue: str = Field(min_length=1, max_length=255, description="Queue to consume.")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return check_url(value, ("amqp", "amqps"), DEFAULT_URL)


class ConnectionLost(Exception):
    """The broker closed the channel or connection under a running consumer."""


class AmqpImpulse:
    """Deliver the messages of a RabbitMQ queue (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any] | None, context: ImpulseContext) -> None:
        self.config = parse_config(AmqpConfig, config, "amqp")
        self.context = context

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        async def session(connected: Callable[[], None]) -> None:
            await self._session(deliver, stop, connected)

        await keep_connected(session, url=self.config.url, what="amqp", context=self.context, stop=stop)

    async def _session(self, deliver: Deliver, stop: asyncio.Event, connected: Callable[[], None]) -> None:
        inbox: asyncio.Queue[AbstractIncomingMessage | BaseException] = asyncio.Queue()

        def lost(_sender: Any, exc: BaseException | None = None) -> None:
            inbox.put_nowait(ConnectionLost(str(exc) if exc else "closed"))

        connection = await aio_pika.connect(
            self.config.url,
            timeout=5,
            client_properties={"connection_name": f"bobrapet-impulse-{self.context.identity}"},
        )
        try:
            connection.close_callbacks.add(lost)
            channel = await connection.channel()
            channel, queue = await self._queue(connection, channel)
            channel.close_callbacks.add(lost)
            await channel.set_qos(prefetch_count=PREFETCH)
            await queue.consume(inbox.put, no_ack=False)
            connected()
            await self._consume(inbox, deliver, stop)
        finally:
            connection.close_callbacks.discard(lost)
            await connection.close()

    async def _queue(
        self, connection: AbstractConnection, channel: AbstractChannel
    ) -> tuple[AbstractChannel, AbstractQueue]:
        """The configured queue (declared durable when missing) and the channel to consume it on."""
        name = self.config.queue
        try:
            return channel, await channel.declare_queue(name, passive=True)
        except ChannelNotFoundEntity:
            pass  # the broker closed that channel
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=True)
        self.context.log.info("amqp: created durable queue %s", name)
        return channel, queue

    async def _consume(
        self,
        inbox: asyncio.Queue[AbstractIncomingMessage | BaseException],
        deliver: Deliver,
        stop: asyncio.Event,
    ) -> None:
        backoff = Backoff()
        while not stop.is_set():
            item = await unless_stopped(inbox.get(), stop)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if await self._handle(item, deliver, backoff):
                continue
            if await sleep_or_stop(self.context.clock, backoff.failed(), stop):
                return

    async def _handle(self, message: AbstractIncomingMessage, deliver: Deliver, backoff: Backoff) -> bool:
        """Deliver ``message`` and acknowledge it; ``False`` (requeued) when ``deliver`` raised."""
        delivery = self._delivery(message)
        self.context.trace(delivery)
        try:
            await deliver(delivery)
        except Exception as exc:
            self.context.log.warning(
                "amqp: message %s not delivered (%s); requeued",
                delivery.key,
                describe_error(exc, self.config.url, self.context),
            )
            await message.nack(requeue=True)
            return False
        await message.ack()
        backoff.succeeded()
        return True

    def _delivery(self, message: AbstractIncomingMessage) -> Delivery:
        key = message.message_id or hashlib.sha256(message.body).hexdigest()
        return Delivery(
            body=decode_body(message.body),
            headers=text_headers(message.headers),
            key=key,
            received_at=self.context.clock.now(),
        )
