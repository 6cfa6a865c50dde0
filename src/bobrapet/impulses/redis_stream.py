"""``redis-stream``: start a run per stream entry (``bobrapet.impulses.redis_stream:RedisStreamImpulse``).

``spec.with``: ``url`` (default ``redis://127.0.0.1:6379/0``), ``stream`` (required),
``group`` (consumer group; default ``bobrapet.<namespace>.<name>``), ``consumer`` (this
runtime's name in the group; default ``<namespace>.<name>``, stable across restarts),
``claimIdleSeconds`` (default 60: entries pending that long with any consumer are claimed),
``startFrom`` (``new`` | ``all``, default ``new``: where a newly created group starts).

Invariants:

* What is created when missing: the group (``XGROUP CREATE ... MKSTREAM``, at ``$`` or
  ``0`` per ``startFrom``), and with it an empty stream. Existing ones are used as they are.
* A delivery's key is the entry id; when the entry has a ``data`` field its body is that
  field's JSON value (else its text) and the other fields are the headers; otherwise the
  body is the object of all fields (text values) and there are no headers.
* An entry is acknowledged (``XACK``) only after ``deliver`` returned. When ``deliver``
  raises, the entry stays pending; consumption pauses (exponential back-off, 1 s doubling to
  60 s) and resumes with this consumer's pending entries, oldest first, so it is delivered
  again. Entries that were already pending for this consumer when it starts (a crash) are
  delivered first. Entries idle for ``claimIdleSeconds`` in other consumers' pending lists
  (a consumer that died) are claimed (``XAUTOCLAIM``, checked every half of that time) and
  delivered. A pending entry deleted from the stream is acknowledged and skipped.
* Any connection error restarts the session with back-off. ``stop`` is seen within a second
  (the ``BLOCK`` of the read), after the entry in flight is done; unread pending entries stay
  with this consumer for its next start.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bobrapet.api.types.base import WireModel
from bobrapet.impulses.config import check_url, parse_config
from bobrapet.impulses.context import ImpulseContext
from bobrapet.impulses.delivery import Deliver, Delivery
from bobrapet.impulses.pacing import Backoff, describe_error, keep_connected, sleep_or_stop
from bobrapet.impulses.payload import as_text, decode_body

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DATA_FIELD = "data"
POLL_MS = 1000
BATCH = 16
CLAIM_PAGE = 100

Entry = tuple[str, dict[str, str]]


class RedisStreamConfig(WireModel):
    """``spec.with`` of a ``redis-stream`` Impulse."""

    url: str = Field(DEFAULT_URL, description="Redis URL.")
    stream: str = Field(min_length=1, description="Stream key.")
    group: str | None = Field(None, min_length=1, description="Consumer group.")
    consumer: str | None = Field(None, min_length=1, description="Consumer name in the group.")
    claim_idle_seconds: int = Field(60, ge=1, le=86400, description="Claim entries pending this long.")
    start_from: Literal["new", "all"] = Field("new", description="Where a newly created group starts.")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return check_url(value, ("redis", "rediss", "unix"), DEFAULT_URL)


class RedisStreamImpulse:
    """Deliver the entries of a Redis stream through a consumer group (see the module docstring)."""

    def __init__(self, config: Mapping[str, Any] | None, context: ImpulseContext) -> None:
        self.config = parse_config(RedisStreamConfig, config, "redis-stream")
        self.context = context
        self.stream = self.config.stream
        self.group = self.config.group or f"bobrapet.{context.identity}"
        self.consumer = self.config.consumer or context.identity

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        async def session(connected: Callable[[], None]) -> None:
            await self._session(deliver, stop, connected)

        await keep_connected(session, url=self.config.url, what="redis", context=self.context, stop=stop)

    async def _session(self, deliver: Deliver, stop: asyncio.Event, connected: Callable[[], None]) -> None:
        client = Redis.from_url(self.config.url, socket_connect_timeout=5, socket_timeout=POLL_MS / 1000 + 15)
        try:
            await self._ensure_group(client)
            connected()
            await self._consume(client, deliver, stop)
        finally:
            await client.aclose()

    async def _ensure_group(self, client: Redis) -> None:
        start = "$" if self.config.start_from == "new" else "0"
        try:
            await client.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
            return
        self.context.log.info(
            "redis: created group %s on stream %s (startFrom %s)",
            self.group,
            self.stream,
            self.config.start_from,
        )

    async def _consume(self, client: Redis, deliver: Deliver, stop: asyncio.Event) -> None:
        clock = self.context.clock
        backoff = Backoff()
        own_pending = True
        next_claim = clock.monotonic()
        while not stop.is_set():
            if clock.monotonic() >= next_claim:
                own_pending = await self._claim_stale(client) or own_pending
                next_claim = clock.monotonic() + self.config.claim_idle_seconds / 2
            entries = await self._read(client, "0" if own_pending else ">")
            if own_pending and not entries:
                own_pending = False
            for entry in entries:
                if stop.is_set():
                    return
                if await self._handle(client, entry, deliver, backoff):
                    continue
                own_pending = True
                if await sleep_or_stop(clock, backoff.failed(), stop):
                    return
                break

    async def _read(self, client: Redis, position: str) -> list[Entry]:
        """This consumer's pending entries (``0``) or new ones (``>``, blocking up to a second)."""
        block = None if position == "0" else POLL_MS
        reply: Any = await client.xreadgroup(
            self.group, self.consumer, {self.stream: position}, count=BATCH, block=block
        )
        streams = reply.items() if isinstance(reply, dict) else (reply or [])
        return [(as_text(eid), _text_fields(fields)) for _, found in streams for eid, fields in found]

    async def _claim_stale(self, client: Redis) -> bool:
        """Move entries idle for ``claimIdleSeconds`` to this consumer; whether any were moved."""
        cursor, claimed = "0-0", 0
        while True:
            reply = await client.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.config.claim_idle_seconds * 1000,
                start_id=cursor,
                count=CLAIM_PAGE,
            )
            cursor, claimed = as_text(reply[0]), claimed + len(reply[1])
            if cursor == "0-0":
                break
        if claimed:
            self.context.log.info("redis: claimed %d stale pending entries of %s", claimed, self.stream)
        return claimed > 0

    async def _handle(self, client: Redis, entry: Entry, deliver: Deliver, backoff: Backoff) -> bool:
        """Deliver ``entry`` and acknowledge it; ``False`` (left pending) when ``deliver`` raised."""
        entry_id, fields = entry
        if not fields:
            self.context.log.warning(
                "redis: pending entry %s was deleted from %s; skipped", entry_id, self.stream
            )
            await client.xack(self.stream, self.group, entry_id)
            return True
        delivery = self._delivery(entry_id, fields)
        self.context.trace(delivery)
        try:
            await deliver(delivery)
        except Exception as exc:
            self.context.log.warning(
                "redis: entry %s not delivered (%s); it stays pending and will be delivered again",
                entry_id,
                describe_error(exc, self.config.url, self.context),
            )
            return False
        await client.xack(self.stream, self.group, entry_id)
        backoff.succeeded()
        return True

    def _delivery(self, entry_id: str, fields: dict[str, str]) -> Delivery:
        received = self.context.clock.now()
        if DATA_FIELD in fields:
            headers = {k: v for k, v in fields.items() if k != DATA_FIELD}
            return Delivery(decode_body(fields[DATA_FIELD]), headers, entry_id, received)
        return Delivery(dict(fields), {}, entry_id, received)


def _text_fields(fields: Mapping[Any, Any] | None) -> dict[str, str]:
    return {as_text(k): as_text(v) for k, v in (fields or {}).items()}
