"""Lists of one kind shared between reconciles until a watch event makes them stale.

Counting reconcilers ("how many Stories use this Engram?") would otherwise list the same
objects once per key. A :class:`ListCache` keeps the last list per namespace scope and
drops it whenever a relevant watch event of its kind arrives (:meth:`ListCache.watch` builds
that watch). Correctness argument: a reconcile that read a stale list was necessarily
started before the event's dispatch; the event's own mapping then enqueues the affected
keys again, and that later reconcile sees a fresh list (the cache was dropped before the
mapping ran).

Unlike :class:`~.cache.ObjectCache` it holds nothing between bursts, which suits kinds
with many large objects (StepRuns, StoryRuns). The watch's predicate decides which events
are relevant: it must pass every event that changes a field the reconciler reads from the
cached objects (``ADDED``/``DELETED`` always count).

Lists returned are shared: callers must not mutate them or the objects in them.
"""

from __future__ import annotations

import asyncio

from bobrapet.api.kinds import Kind
from bobrapet.runtime.watches import Mapper, Predicate, Watch
from bobrapet.store.client import Client, Resource, WatchEvent

_ALL = "\x00all"


class ListCache:
    """Cached ``client.list(kind, namespace)`` results, invalidated by watch events."""

    def __init__(self, client: Client, kind: Kind) -> None:
        self.client = client
        self.kind = kind
        self.lists = 0  # list calls made (for tests and metrics)
        self._epoch = 0
        self._entries: dict[str, tuple[int, list[Resource]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def invalidate(self, event: WatchEvent | None = None) -> None:
        """Drop cached lists (those covering ``event``'s namespace, or all)."""
        self._epoch += 1
        if event is None or not self.kind.namespaced:
            self._entries.clear()
            return
        namespace = (event.object.get("metadata") or {}).get("namespace") or ""
        self._entries.pop(namespace, None)
        self._entries.pop(_ALL, None)

    async def list(self, namespace: str | None = None) -> list[Resource]:
        """Objects of the kind in ``namespace`` (all namespaces when ``None``)."""
        scope = _ALL if namespace is None or not self.kind.namespaced else namespace
        entry = self._entries.get(scope)
        if entry is not None:
            return entry[1]
        lock = self._locks.setdefault(scope, asyncio.Lock())
        async with lock:
            entry = self._entries.get(scope)
            if entry is not None:
                return entry[1]
            epoch = self._epoch
            objects = await self.client.list(self.kind, None if scope == _ALL else scope)
            self.lists += 1
            if self._epoch == epoch:
                self._entries[scope] = (epoch, objects)
            return objects

    def watch(self, mapper: Mapper, predicate: Predicate | None = None) -> Watch:
        """A watch of the cached kind that invalidates on every event ``predicate`` passes
        (before mapping); without a predicate every event invalidates."""

        def invalidating(event: WatchEvent) -> bool:
            relevant = predicate(event) if predicate is not None else True
            if relevant or event.type != "MODIFIED":
                self.invalidate(event)
            return relevant

        return Watch(self.kind, mapper, invalidating)
