"""Waiting for the StoryTrigger controller's decision on a trigger.

Invariants: the wait reads the trigger once and then follows the store's watch from that
resourceVersion (no polling), so a decision written at any moment after the read is seen;
an expired watch (410) is resumed from a fresh read. It returns the trigger as soon as
``status.decision`` is ``Created``, ``Reused`` or ``Rejected`` and raises
:class:`~.errors.StillPending` (retryable) when ``timeout`` seconds of the injected clock
pass first. A deleted trigger is :class:`~bobrapet.api.errors.NotFound`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from bobrapet.api.errors import NotFound, StatusError
from bobrapet.api.kinds import STORY_TRIGGER
from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.store.client import Client, Resource
from bobrapet.triggers.errors import StillPending

DECISIONS = ("Created", "Reused", "Rejected")
#: How long a submitter waits for a decision by default (the SDK's operation timeout).
DEFAULT_DECISION_TIMEOUT = 30.0


def decision_of(trigger: Mapping[str, Any]) -> str | None:
    """The final decision of a trigger at its current generation, or None while pending."""
    status = trigger.get("status") or {}
    decision = status.get("decision")
    if decision not in DECISIONS:
        return None
    generation = (trigger.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    return str(decision) if generation is None or observed == generation else None


def _is_target(event_object: Resource, name: str) -> bool:
    return (event_object.get("metadata") or {}).get("name") == name


async def _follow(client: Client, namespace: str, name: str) -> Resource:
    while True:
        trigger = await client.get(STORY_TRIGGER, name, namespace)
        if decision_of(trigger):
            return trigger
        since = str((trigger.get("metadata") or {}).get("resourceVersion") or "") or None
        try:
            async for event in client.watch(STORY_TRIGGER, namespace, since=since):
                if not _is_target(event.object, name):
                    continue
                if event.type == "DELETED":
                    raise NotFound(STORY_TRIGGER.kind, name, STORY_TRIGGER.group)
                if decision_of(event.object):
                    return event.object
        except StatusError as err:
            if err.reason != "Expired":
                raise


async def wait_for_decision(
    client: Client,
    namespace: str,
    name: str,
    *,
    timeout: float = DEFAULT_DECISION_TIMEOUT,
    clock: Clock | None = None,
) -> Resource:
    """The trigger once decided (see the module invariants)."""
    clock = clock or RealClock()
    follow: asyncio.Future[Resource] = asyncio.ensure_future(_follow(client, namespace, name))
    expired: asyncio.Future[Resource] = asyncio.get_running_loop().create_future()

    def expire() -> None:
        if not expired.done():
            expired.set_result({})

    timer = clock.call_later(timeout, expire)
    try:
        await asyncio.wait({follow, expired}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
        if not follow.done():
            follow.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await follow
        if not expired.done():
            expired.cancel()
    if follow.cancelled():
        raise StillPending(name, namespace, timeout)
    return follow.result()
