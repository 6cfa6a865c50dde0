"""The seam between an impulse runtime (an event source) and the supervisor that runs it.

A runtime turns events (a cron tick, a broker message) into :class:`Delivery` values and
hands each one to the supervisor's :class:`Deliver` callable, which stores the StoryTrigger.

Invariants:

* ``Deliver`` returns only once the StoryTrigger is durably stored and raises when it could
  not be; a runtime acknowledges its event (broker ack, recorded cron tick) only after
  ``Deliver`` returned, so an event is never lost, and it may deliver an event again (after
  a failure, a crash or a broker redelivery) with the same ``key``, which the StoryTrigger's
  dedupe identity turns into a single run.
* ``ImpulseRuntime.run`` returns after ``stop`` is set, finishing the delivery in flight
  first (never half-acknowledged); it survives broker outages (reconnecting with back-off)
  and raises only for errors no retry can fix (bad configuration).
* A runtime is built by calling its class with the Impulse's ``spec.with`` and an
  :class:`~bobrapet.impulses.context.ImpulseContext`; a bad ``spec.with`` raises
  :class:`~bobrapet.impulses.config.ImpulseConfigError` naming the field, before any I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bobrapet.impulses.context import ImpulseContext


@dataclass(frozen=True)
class Delivery:
    """One event of a source.

    ``body`` is the parsed JSON value when the payload is valid UTF-8 JSON, else the payload
    as text (UTF-8, invalid bytes replaced by U+FFFD); sources with structured events (cron,
    Redis fields) build it as a JSON object. ``key`` is the dedupe key (message id,
    scheduled time); ``None`` only for a source that has none. ``received_at`` is the
    runtime clock's time when the event was read.
    """

    body: Any
    headers: Mapping[str, str]
    key: str | None
    received_at: datetime


class Deliver(Protocol):
    """Provided by the supervisor: store the StoryTrigger of ``delivery``."""

    async def __call__(self, delivery: Delivery, /) -> None:
        """Return once the StoryTrigger is durably stored; raise when it is not."""
        ...


class ImpulseRuntime(Protocol):
    """A running event source."""

    async def run(self, deliver: Deliver, stop: asyncio.Event) -> None:
        """Deliver events until ``stop`` is set; raise only for fatal (configuration) errors."""
        ...


class ImpulseFactory(Protocol):
    """The entrypoint class of a built-in impulse (``bobrapet.impulses.cron:CronImpulse``)."""

    def __call__(self, config: Mapping[str, Any] | None, context: ImpulseContext, /) -> ImpulseRuntime: ...
