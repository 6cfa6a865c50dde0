"""Kubernetes-style Events: recording them on objects and pruning old ones.

Invariants:

* One Event per (involved object uid, type, reason, message): its name is
  ``<object name>.<digest>``, so a repeat of the same event finds it and bumps ``count`` and
  ``lastTimestamp`` instead of adding another object (what client-go's event correlator does).
* One write per event: a first occurrence is one ``create``; a repeat is one ``update``
  (a read first when this process has not seen the Event yet).
* An Event is owned (``ownerReferences``, not as controller) by the object it is about, so
  deleting the object deletes its Events; the :func:`setup` controller also deletes Events
  whose ``lastTimestamp`` is older than the TTL (the API server's ``--event-ttl``, 1 h).
* Recording never fails the caller: a store error is logged and the event dropped, as
  Kubernetes treats events as best effort.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from bobrapet.api.errors import AlreadyExists, NotFound
from bobrapet.api.kinds import EVENT
from bobrapet.api.timestamps import format_timestamp, parse_timestamp
from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.manager import Manager
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.retry import retry_on_conflict
from bobrapet.store.client import Client, Resource

log = logging.getLogger("bobrapet.controllers.events")

NAME = "event"
COMPONENT = "bobrapet-engine"
#: Default age cap of an Event after its last occurrence (kube-apiserver ``--event-ttl``).
EVENT_TTL_SECONDS = 3600.0
MAX_MESSAGE = 4096
#: Namespace of Events about cluster-scoped objects (as Kubernetes does).
CLUSTER_EVENTS_NAMESPACE = "default"

EventType = Literal["Normal", "Warning"]
_NAME_TAIL = re.compile(r"[-.]+$")


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event to record about an object."""

    type: EventType
    reason: str
    message: str


def event_name(involved: Resource, type_: str, reason: str, message: str) -> str:
    """``<object name>.<16 hex digits>``: the same for every repeat of the same event."""
    metadata = involved.get("metadata") or {}
    identity = "\x00".join((str(metadata.get("uid") or metadata.get("name")), type_, reason, message))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    base = _NAME_TAIL.sub("", str(metadata.get("name") or "object")[: 253 - 17]) or "object"
    return f"{base}.{digest}"


def new_event(involved: Resource, event: EventSpec, now: datetime, instance: str | None = None) -> Resource:
    """The Event object for a first occurrence of ``event`` about ``involved``."""
    metadata = involved.get("metadata") or {}
    api_version = str(involved.get("apiVersion") or "")
    kind = str(involved.get("kind") or "")
    namespace = str(metadata.get("namespace") or CLUSTER_EVENTS_NAMESPACE)
    stamp = format_timestamp(now)
    reference: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "name": metadata.get("name")}
    if metadata.get("namespace"):
        reference["namespace"] = metadata["namespace"]
    if metadata.get("uid"):
        reference["uid"] = metadata["uid"]
    meta: dict[str, Any] = {
        "name": event_name(involved, event.type, event.reason, event.message),
        "namespace": namespace,
    }
    if metadata.get("uid"):
        meta["ownerReferences"] = [
            {"apiVersion": api_version, "kind": kind, "name": metadata.get("name"), "uid": metadata["uid"]}
        ]
    body: Resource = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": meta,
        "involvedObject": reference,
        "reason": event.reason,
        "message": event.message[:MAX_MESSAGE],
        "type": event.type,
        "count": 1,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
    }
    if instance:
        body["reportingInstance"] = instance
    return body


def bumped(existing: Resource, now: datetime) -> Resource:
    """``existing`` seen once more: ``count`` + 1 and ``lastTimestamp`` = ``now``."""
    return {**existing, "count": int(existing.get("count") or 1) + 1, "lastTimestamp": format_timestamp(now)}


def expires_at(event: Resource, ttl: float) -> datetime | None:
    last = parse_timestamp(event.get("lastTimestamp")) or parse_timestamp(
        (event.get("metadata") or {}).get("creationTimestamp")
    )
    return None if last is None else last + timedelta(seconds=ttl)


class EventRecorder:
    """Records :class:`EventSpec` s about objects in the store (see the module invariants)."""

    def __init__(self, client: Client, clock: Clock | None = None, instance: str | None = None) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.instance = instance

    async def record(self, involved: Resource, type_: EventType, reason: str, message: str) -> None:
        await self.record_all(involved, [EventSpec(type_, reason, message)])

    async def record_all(self, involved: Resource, events: list[EventSpec]) -> None:
        for event in events:
            try:
                await self._record(involved, event)
            except Exception:  # best effort: an event must never fail a reconcile
                log.warning("could not record event %s on %s", event.reason, _label(involved), exc_info=True)

    async def _record(self, involved: Resource, event: EventSpec) -> None:
        body = new_event(involved, event, self.clock.now(), self.instance)
        try:
            await self.client.create(body)
            return
        except AlreadyExists:
            pass
        name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]

        async def bump() -> None:
            try:
                existing = await self.client.get(EVENT, name, namespace)
            except NotFound:
                await self.client.create(body)
                return
            await self.client.update(bumped(existing, self.clock.now()))

        await retry_on_conflict(bump)


def _label(obj: Resource) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


class EventPruner:
    """Deletes each Event once it is older than ``ttl`` (requeued until then)."""

    def __init__(self, manager: Manager, ttl: float = EVENT_TTL_SECONDS) -> None:
        self.client = manager.client
        self.clock = manager.clock
        self.cache = manager.cache(EVENT)
        self.ttl = ttl

    async def __call__(self, request: Request) -> Result:
        event = self.cache.get(request.name, request.namespace)
        if event is None:
            return Result()
        deadline = expires_at(event, self.ttl)
        if deadline is None:
            return Result()
        left = (deadline - self.clock.now()).total_seconds()
        if left > 0:
            return Result(requeue_after=left)
        with contextlib.suppress(NotFound):
            await self.client.delete(EVENT, request.name, request.namespace)
        return Result()


def setup(manager: Manager, ttl: float = EVENT_TTL_SECONDS) -> Controller:
    controller = Controller(NAME, EVENT, EventPruner(manager, ttl), workers=1, base_delay=0.5, max_delay=60.0)
    return manager.add(controller)
