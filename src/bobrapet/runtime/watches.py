"""What a controller watches: kinds, event → request mappers and event predicates.

A :class:`Watch` says "when an object of ``kind`` changes, reconcile these keys". The
*mapper* turns one :class:`~bobrapet.store.client.WatchEvent` into the requests to enqueue
(it may be a plain function or ``async``); the optional *predicate* filters events first.

Mappers provided here:

* :func:`enqueue_object` — the object's own key (used for the primary kind);
* :func:`owner_mapper` — the owners of the kind named in ``metadata.ownerReferences``;
* :func:`names_mapper` — keys named by fields of the object (``spec.templateRef.name``…);
* :func:`reverse_mapper` — primaries that refer to the changed object, found by listing
  the primary kind in the object's namespace (one list call per event);
  :func:`cached_reverse_mapper` does the same from a manager :class:`~.cache.ObjectCache`
  and :func:`index_mapper` answers it from one of the cache's indexes (no scan);
* :func:`tracking_mapper` — keys named by the object now *and* by its previous state, so
  a reference that was removed still gets its target reconciled (stateful; the first
  MODIFIED event of an object it has no memory of also runs a ``fallback`` mapper).

Predicates: :func:`event_types`, :func:`changed` (stateful: passes an event when an
extracted value differs from the last one seen for that object; ADDED/DELETED always pass)
and :func:`generation_changed` (``changed`` on ``metadata.generation``, i.e. spec changes).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from bobrapet.api.kinds import Kind
from bobrapet.runtime.cache import ObjectCache, object_key
from bobrapet.runtime.request import Request
from bobrapet.store.client import Client, EventType, Resource, WatchEvent

MapResult = Iterable[Request] | Awaitable[Iterable[Request]]
Mapper = Callable[[WatchEvent], MapResult]
Predicate = Callable[[WatchEvent], bool]


@dataclass(frozen=True)
class Watch:
    """Reconcile ``mapper(event)`` whenever an object of ``kind`` changes.

    With ``debounce`` (seconds, or a function of the mapped request giving them), the mapped
    keys are reconciled that long after the first event, once for every event of the burst
    (e.g. counters over many children, or a run with hundreds of steps finishing).
    """

    kind: Kind
    mapper: Mapper
    predicate: Predicate | None = None
    debounce: float | Callable[[Request], float] = 0.0

    def delay(self, request: Request) -> float:
        return self.debounce(request) if callable(self.debounce) else self.debounce


# -- mappers ---------------------------------------------------------------------------------
def enqueue_object(event: WatchEvent) -> list[Request]:
    """The changed object's own key."""
    return [Request.for_object(event.object)]


def owner_mapper(owner_kind: Kind, *, controller_only: bool = False) -> Mapper:
    """Map an event to the owners of ``owner_kind`` listed in ``metadata.ownerReferences``.

    Owners of namespaced kinds live in the object's namespace (Kubernetes forbids
    cross-namespace owners); cluster-scoped owners get ``namespace=None``.
    """

    def mapper(event: WatchEvent) -> list[Request]:
        metadata = event.object.get("metadata") or {}
        namespace = (metadata.get("namespace") or None) if owner_kind.namespaced else None
        requests: list[Request] = []
        for ref in metadata.get("ownerReferences") or ():
            if ref.get("kind") != owner_kind.kind:
                continue
            group = str(ref.get("apiVersion", "")).rpartition("/")[0]
            if group != owner_kind.group:
                continue
            if controller_only and not ref.get("controller"):
                continue
            if ref.get("name"):
                requests.append(Request(namespace, str(ref["name"])))
        return requests

    return mapper


def names_mapper(
    extract: Callable[[Resource], Iterable[str | tuple[str | None, str]]],
    *,
    cluster_scoped: bool = False,
) -> Mapper:
    """Map an event to keys named by the object itself.

    ``extract(obj)`` yields names (resolved in the object's namespace, or cluster-scoped
    when ``cluster_scoped``) or ``(namespace, name)`` pairs (``namespace`` None or empty
    means the object's own namespace).
    """

    def mapper(event: WatchEvent) -> list[Request]:
        own_namespace = (event.object.get("metadata") or {}).get("namespace") or None
        requests: list[Request] = []
        for item in extract(event.object):
            if isinstance(item, tuple):
                namespace, name = item
                namespace = namespace or own_namespace
            else:
                namespace, name = own_namespace, item
            if not name:
                continue
            requests.append(Request(None if cluster_scoped else namespace, name))
        return requests

    return mapper


def map_objects(fn: Callable[[Resource], Iterable[Request]]) -> Mapper:
    """Build a mapper from any function of the changed object."""

    def mapper(event: WatchEvent) -> list[Request]:
        return list(fn(event.object))

    return mapper


def reverse_mapper(
    client: Client,
    primary_kind: Kind,
    refers_to: Callable[[Resource, Resource], bool],
    *,
    same_namespace: bool = True,
) -> Mapper:
    """Primaries ``p`` of ``primary_kind`` with ``refers_to(p, changed_object)``.

    Lists the primary kind once per event: in the changed object's namespace when
    ``same_namespace`` (and the changed object is namespaced), else everywhere.
    """

    async def mapper(event: WatchEvent) -> list[Request]:
        namespace = (event.object.get("metadata") or {}).get("namespace") or None
        scope = namespace if same_namespace and primary_kind.namespaced else None
        primaries = await client.list(primary_kind, scope)
        return [Request.for_object(p) for p in primaries if refers_to(p, event.object)]

    return mapper


def cached_reverse_mapper(
    cache: ObjectCache,
    refers_to: Callable[[Resource, Resource], bool],
    *,
    same_namespace: bool = True,
) -> Mapper:
    """Like :func:`reverse_mapper`, reading the primaries from a manager cache (no I/O)."""

    def mapper(event: WatchEvent) -> list[Request]:
        namespace = (event.object.get("metadata") or {}).get("namespace") or None
        scope = namespace if same_namespace and cache.kind.namespaced else None
        return [Request.for_object(p) for p in cache.list(scope) if refers_to(p, event.object)]

    return mapper


def index_mapper(
    cache: ObjectCache,
    index: str,
    values: Callable[[Resource], Iterable[Hashable]],
) -> Mapper:
    """Cached objects indexed (by ``index``) under any of ``values(changed_object)``."""

    def mapper(event: WatchEvent) -> list[Request]:
        found: dict[Request, None] = {}
        for value in values(event.object):
            for obj in cache.by_index(index, value):
                found[Request.for_object(obj)] = None
        return list(found)

    return mapper


def tracking_mapper(
    extract: Callable[[Resource], Iterable[Request]],
    *,
    fallback: Mapper | None = None,
) -> Mapper:
    """Map to ``extract(new)`` plus ``extract(previous)``; remembers the last result per object.

    An object first seen in a MODIFIED event may have dropped references this process
    never saw, so ``fallback(event)`` (e.g. a :func:`reverse_mapper` over every possible
    target) is added then. Memory is forgotten on DELETED.
    """
    last: dict[tuple[str, str], frozenset[Request]] = {}

    async def mapper(event: WatchEvent) -> list[Request]:
        key = object_key(event.object)
        current = frozenset(extract(event.object))
        previous = last.pop(key, None)
        if event.type != "DELETED":
            last[key] = current
        result = set(current)
        if previous is not None:
            result |= previous
        elif event.type == "MODIFIED" and fallback is not None:
            extra = fallback(event)
            if inspect.isawaitable(extra):
                extra = await extra
            result.update(extra)
        return sorted(result)

    return mapper


# -- predicates ------------------------------------------------------------------------------
def event_types(*types: EventType) -> Predicate:
    """Pass only events of the given types."""
    allowed = frozenset(types)

    def predicate(event: WatchEvent) -> bool:
        return event.type in allowed

    return predicate


def changed(
    extract: Callable[[Resource], Hashable], added: Callable[[Hashable], bool] | None = None
) -> Predicate:
    """Pass ADDED/DELETED, and MODIFIED when ``extract(obj)`` differs from the last value.

    The predicate remembers the last value per object (forgotten on DELETED); the first
    event seen for an object always passes, except that with ``added`` an ADDED event
    passes only when ``added(value)`` is true (its value is remembered either way).
    """
    last: dict[tuple[str, str], Hashable] = {}
    missing = object()

    def predicate(event: WatchEvent) -> bool:
        key = object_key(event.object)
        if event.type == "DELETED":
            last.pop(key, None)
            return True
        value = extract(event.object)
        previous = last.get(key, missing)
        last[key] = value
        if event.type == "ADDED":
            return added is None or added(value)
        return previous is missing or previous != value

    return predicate


def generation_changed() -> Predicate:
    """``changed`` on ``metadata.generation`` (spec changes, creation, deletion)."""

    def generation(obj: Resource) -> Any:
        metadata = obj.get("metadata") or {}
        return (metadata.get("generation"), bool(metadata.get("deletionTimestamp")))

    return changed(generation)
