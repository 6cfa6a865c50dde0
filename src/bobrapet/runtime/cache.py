"""An in-memory copy of every object of one kind, kept current by the manager's watch.

The manager fills an :class:`ObjectCache` with a list taken after its watch bookmark and
then applies every watch event of the kind *before* any controller maps it, so a
reconcile triggered by an event always reads a cache that already contains that event.

Invariants:

* an event never moves an object backwards: it is applied only when its
  ``resourceVersion`` is newer than the cached copy's (numeric comparison; non-numeric
  versions are applied as they come);
* an object that was created and deleted between the watch bookmark and the list may
  appear briefly (its ADDED event replays) until its DELETED event, which always follows;
* after lost events (410) the manager replaces the whole content with a fresh list.

Indexes (client-go "indexers") answer "which cached objects have value V?" without a
scan: ``add_index(name, fn)`` where ``fn(obj)`` yields the values an object is indexed
under; ``by_index(name, value)`` returns the objects. Indexes are always consistent with
the cached content. An event that leaves a projection unchanged but for its
``resourceVersion`` does not recompute the projection's indexes (index functions must not
depend on ``resourceVersion``).

Reads are synchronous and return the cached dicts themselves: callers must not mutate
them (copy first). Reconcilers still read the object they write from the client, so
their writes carry a current ``resourceVersion``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from bobrapet.api.kinds import Kind
from bobrapet.store.client import Resource, WatchEvent


def object_key(obj: Resource) -> tuple[str, str]:
    """``(namespace, name)`` of an object (``""`` for a missing part)."""
    metadata = obj.get("metadata") or {}
    namespace, name = metadata.get("namespace") or "", metadata.get("name") or ""
    # str() only when needed: this runs for every cache update and watch predicate
    return (
        namespace if type(namespace) is str else str(namespace),
        name if type(name) is str else str(name),
    )


def _version(obj: Resource) -> int | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    if isinstance(rv, str) and rv.isdigit():
        return int(rv)
    return None


IndexFunc = Callable[[Resource], Iterable[Hashable]]
Transform = Callable[[Resource], Resource]

_IDENTITY = ("name", "namespace", "resourceVersion", "uid")


def _project(obj: Resource, transform: Transform | None) -> Resource:
    if transform is None:
        return obj
    projected = transform(obj)
    metadata = dict(projected.get("metadata") or {})
    source = obj.get("metadata") or {}
    for key in _IDENTITY:
        if key in source:
            metadata[key] = source[key]
    return {**projected, "metadata": metadata}


def _same_projection(old: Resource, new: Resource) -> bool:
    """Whether two projections of one object differ at most in ``metadata.resourceVersion``."""
    if old.keys() != new.keys():
        return False
    for key, value in new.items():
        if key != "metadata" and old[key] != value:
            return False
    old_meta, new_meta = old.get("metadata") or {}, new.get("metadata") or {}
    if old_meta.keys() != new_meta.keys():
        return False
    return all(key == "resourceVersion" or old_meta[key] == value for key, value in new_meta.items())


class ObjectCache:
    """Objects of ``kind`` by namespace and name, with optional indexes.

    With a ``transform`` (a *projection*), only ``transform(obj)`` is kept — plus the
    identity metadata (name, namespace, resourceVersion, uid), always copied over — so
    kinds with many large objects can be counted and indexed cheaply.
    """

    def __init__(self, kind: Kind, transform: Transform | None = None) -> None:
        self.kind = kind
        self.transform = transform
        self.synced = False
        self._by_namespace: dict[str, dict[str, Resource]] = {}
        self._index_funcs: dict[str, IndexFunc] = {}
        # index name -> value -> keys; and index name -> key -> values (for removal)
        self._indexes: dict[str, dict[Hashable, set[tuple[str, str]]]] = {}
        self._indexed: dict[str, dict[tuple[str, str], frozenset[Hashable]]] = {}

    # -- indexes ------------------------------------------------------------------------------
    def add_index(self, name: str, func: IndexFunc) -> None:
        """Register index ``name`` (idempotent per name: the first function wins)."""
        if name in self._index_funcs:
            return
        self._index_funcs[name] = func
        self._indexes[name] = {}
        self._indexed[name] = {}
        for bucket in self._by_namespace.values():
            for obj in bucket.values():
                self._index_one(name, object_key(obj), obj)

    def by_index(self, name: str, value: Hashable) -> list[Resource]:
        """Cached objects indexed under ``value`` by index ``name``."""
        found: list[Resource] = []
        for namespace, obj_name in self._indexes[name].get(value, ()):
            obj = self._by_namespace.get(namespace, {}).get(obj_name)
            if obj is not None:
                found.append(obj)
        return found

    def _index_one(self, name: str, key: tuple[str, str], obj: Resource | None) -> None:
        indexed = self._indexed[name]
        old: frozenset[Hashable] = indexed.get(key, frozenset())
        values: frozenset[Hashable] = frozenset() if obj is None else frozenset(self._index_funcs[name](obj))
        if values == old:
            return  # the common case: an event that changes no indexed value
        index = self._indexes[name]
        for value in old - values:
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]
        for value in values - old:
            index.setdefault(value, set()).add(key)
        if values:
            indexed[key] = values
        else:
            indexed.pop(key, None)

    def _reindex(self, key: tuple[str, str], obj: Resource | None) -> None:
        for name in self._index_funcs:
            self._index_one(name, key, obj)

    # -- content ------------------------------------------------------------------------------
    def replace(self, objects: Iterable[Resource]) -> None:
        """Drop everything and hold exactly ``objects``."""
        self._by_namespace = {}
        for name in self._index_funcs:
            self._indexes[name] = {}
            self._indexed[name] = {}
        for source in objects:
            obj = _project(source, self.transform)
            namespace, name = object_key(obj)
            self._by_namespace.setdefault(namespace, {})[name] = obj
            self._reindex((namespace, name), obj)
        self.synced = True

    def apply(self, event: WatchEvent) -> None:
        """Apply one watch event (ignored when older than the cached copy)."""
        namespace, name = object_key(event.object)
        bucket = self._by_namespace.get(namespace)
        current = bucket.get(name) if bucket is not None else None
        if current is not None:
            old, new = _version(current), _version(event.object)
            if old is not None and new is not None and new <= old:
                return
        if event.type == "DELETED":
            if bucket is not None:
                bucket.pop(name, None)
                if not bucket:
                    del self._by_namespace[namespace]
            self._reindex((namespace, name), None)
            return
        obj = _project(event.object, self.transform)
        self._by_namespace.setdefault(namespace, {})[name] = obj
        if current is not None and self.transform is not None and _same_projection(current, obj):
            return  # indexes read the projection only: none of their values can have changed
        self._reindex((namespace, name), obj)

    def get(self, name: str, namespace: str | None = None) -> Resource | None:
        """The cached object or ``None`` (``namespace`` ignored for cluster-scoped kinds)."""
        bucket = self._by_namespace.get((namespace or "") if self.kind.namespaced else "")
        return bucket.get(name) if bucket is not None else None

    def list(self, namespace: str | None = None) -> list[Resource]:
        """Cached objects in ``namespace`` (every namespace when ``None``)."""
        if namespace is not None and self.kind.namespaced:
            return list((self._by_namespace.get(namespace) or {}).values())
        return [obj for bucket in self._by_namespace.values() for obj in bucket.values()]

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._by_namespace.values())
