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

Reads are synchronous and return the cached dicts themselves: callers must not mutate
them (copy first). Reconcilers still read the object they write from the client, so
their writes carry a current ``resourceVersion``.
"""

from __future__ import annotations

from collections.abc import Iterable

from bobrapet.api.kinds import Kind
from bobrapet.store.client import Resource, WatchEvent


def _key(obj: Resource) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _version(obj: Resource) -> int | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    if isinstance(rv, str) and rv.isdigit():
        return int(rv)
    return None


class ObjectCache:
    """Objects of ``kind`` by namespace and name."""

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.synced = False
        self._by_namespace: dict[str, dict[str, Resource]] = {}

    def replace(self, objects: Iterable[Resource]) -> None:
        """Drop everything and hold exactly ``objects``."""
        self._by_namespace = {}
        for obj in objects:
            namespace, name = _key(obj)
            self._by_namespace.setdefault(namespace, {})[name] = obj
        self.synced = True

    def apply(self, event: WatchEvent) -> None:
        """Apply one watch event (ignored when older than the cached copy)."""
        namespace, name = _key(event.object)
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
            return
        self._by_namespace.setdefault(namespace, {})[name] = event.object

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
