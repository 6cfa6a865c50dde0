"""``nats``: start a run per JetStream message (``bobrapet.impulses.nats:NatsImpulse``).

``spec.with``: ``url`` (default ``nats://127.0.0.1:4222``), ``stream`` and ``subject``
(required), ``durable`` (the pull consumer; default ``bobrapet_<namespace>_<name>``),
``ackWaitSeconds`` (default 30: an unacknowledged message is redelivered after this long),
``startFrom`` (``new`` | ``all``, default ``new``: where a newly created durable starts).

Invariants:

* What is created when missing: the stream (``subjects: [subject]``, file storage, limits
  retention) and the durable pull consumer (explicit ack, ``filterSubject: subject``,
  ``ackWait``, unlimited redeliveries, deliver policy from ``startFrom``). Existing ones are
  used as they are.
* A delivery's key is the ``Nats-Msg-Id`` header, else ``<stream>:<stream sequence>``; its
  headers are the message's; its body is the payload's JSON value (else its text).
* A message is acknowledged (``ack_sync``: the server confirmed it) only after ``deliver``
  returned. While ``deliver`` runs, the message is kept in progress (``+WPI``) so a slow
  delivery is not redelivered meanwhile. When ``deliver`` raises, the message is
  negatively acknowledged with a delay (exponential back-off, 1 s doubling to 60 s) and
  consumption pauses for that delay; a killed process's message is redelivered by
  JetStream once ``ackWait`` has passed.
* The client reconnects by itself; any other failure restarts the session with back-off.
  ``stop`` is seen within a second (the fetch poll), after the message in flight is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Literal

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import Field, field_validator

from bobrapet.api.types.base import WireModel
from bobrapet.impulses.config import check_url, parse_config
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Deliver, Delivery
from bobrapet.impulses.pacing import Backoff, describe_error, keep_connected, sleep_or_stop
from bobrapet.impulses.payload import decode_body, text_headers

DEFAULT_URL = "nats://127.0.0.1:4222"
MSG_ID_HEADER = "Nats-Msg-Id"
POLL_SECONDS = 1.0
FORBIDDEN_IN_NAMES = ".*>/\\"


class NatsConfig(WireModel):
    """``spec.with`` of a ``nats`` Impulse."""

    url: str = Field(DEFAULT_URL, description="NATS server URL.")
    stream: str = Field(min_length=1, max_length=255, description="JetStream stream name.")
    subject: str = Field(min_length=1, description="Subject the stream (and the durable) consume.")
    durable: str | None = Field(None, min_length=1, description="Durable pull consumer name.")
    ack_wait_seconds: int = Field(30, ge=1, le=86400, description="Redelivery delay of unacked messages.")
    start_from: Literal["new", "all"] = Field("new", description="Where a newly created durable starts.")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return check_url(value, ("nats", "tls", "ws", "wss"), DEFAULT_URL)

    @field_validator("stream", "durable")
    @classmethod
    def _valid_name(cls, value: str | None) -> str | None:
        if value is not None and any(ch.isspace() or ch in FORBIDDEN_IN_NAMES for ch in value):
            raise ValueError(
                f"must be a JetStream name without spaces, '.', '*', '>', '/' or '\\'; got {value!r}"
            )
        return value

    @field_validator("subject")
    @classmethod
    def _valid_subject(cls, value: str) -> str:
        if any(ch.isspace() for ch in value) or ".." in value or value.startswith(".") or value.endswith("."):
            raise ValueError(f"must be a NATS subject such as 'orders.created' or 'orders.>', got {value!r}")
        return value


class NatsImpulse:
    """Deliver the messages of a JetStream durable pull consumer (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any] | None, context: ImpulseContext) -> None:
        self.config = parse_config(NatsConfig, config, "nats")
        self.context = context
        self.durable = self.config.durable or f"bobrapet_{context.namespace}_{context.name}"

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        async def session(connected: Callable[[], None]) -> None:
            await self._session(deliver, stop, connected)

        await keep_connected(session, url=self.config.url, what="nats", context=self.context, stop=stop)

    async def _session(self, deliver: Deliver, stop: asyncio.Event, connected: Callable[[], None]) -> None:
        client = await nats.connect(
            servers=[self.config.url],
            name=f"bobrapet-impulse-{self.context.identity}",
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            connect_timeout=5,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        try:
            js = client.jetstream()
            await self._ensure_stream_and_durable(js)
            subscription = await js.pull_subscribe_bind(durable=self.durable, stream=self.config.stream)
            connected()
            await self._consume(subscription, deliver, stop)
        finally:
            await _close(client)

    async def _ensure_stream_and_durable(self, js: JetStreamContext) -> None:
        stream, log = self.config.stream, self.context.log
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=[self.config.subject])
            log.info("nats: created stream %s (subjects: %s)", stream, self.config.subject)
        try:
            await js.consumer_info(stream, self.durable)
        except NotFoundError:
            policy = DeliverPolicy.NEW if self.config.start_from == "new" else DeliverPolicy.ALL
            await js.add_consumer(
                stream,
                ConsumerConfig(
                    durable_name=self.durable,
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=policy,
                    filter_subject=self.config.subject,
                    ack_wait=float(self.config.ack_wait_seconds),
                    max_deliver=-1,
                ),
            )
            log.info(
                "nats: created durable %s on stream %s (startFrom %s)",
                self.durable,
                stream,
                self.config.start_from,
            )

    async def _consume(
        self, subscription: JetStreamContext.PullSubscription, deliver: Deliver, stop: asyncio.Event
    ) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                messages = await subscription.fetch(1, timeout=POLL_SECONDS)
            except TimeoutError:
                continue
            for msg in messages:
                if await self._handle(msg, deliver, backoff):
                    continue
                delay = backoff.failed()
                await msg.nak(delay=delay)
                if await sleep_or_stop(self.context.clock, delay, stop):
                    return

    async def _handle(self, msg: Msg, deliver: Deliver, backoff: Backoff) -> bool:
        """Deliver ``msg`` and acknowledge it; ``False`` (not acknowledged) when ``deliver`` raised."""
        delivery = self._delivery(msg)
        self.context.trace(delivery)
        keeper = asyncio.ensure_future(self._keep_in_progress(msg))
        try:
            await deliver(delivery)
        except Exception as exc:
            self.context.log.warning(
                "nats: message %s not delivered (%s); it will be redelivered",
                delivery.key,
                describe_error(exc, self.config.url, self.context),
            )
            return False
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        await msg.ack_sync()
        backoff.succeeded()
        return True

    def _delivery(self, msg: Msg) -> Delivery:
        headers = text_headers(msg.headers)
        key = headers.get(MSG_ID_HEADER) or f"{self.config.stream}:{msg.metadata.sequence.stream}"
        return Delivery(
            body=decode_body(msg.data), headers=headers, key=key, received_at=self.context.clock.now()
        )

    async def _keep_in_progress(self, msg: Msg) -> None:
        """Tell JetStream the message is being worked on, every third of ``ackWait``."""
        while True:
            await self.context.clock.sleep(self.config.ack_wait_seconds / 3)
            await msg.in_progress()

    async def _on_error(self, exc: Exception) -> None:
        self.context.log.warning("nats: %s", describe_error(exc, self.config.url, self.context))

    async def _on_disconnected(self) -> None:
        self.context.log.warning("nats: disconnected")

    async def _on_reconnected(self) -> None:
        self.context.log.info("nats: reconnected")


async def _close(client: NatsClient) -> None:
    if not client.is_closed:
        await client.close()
