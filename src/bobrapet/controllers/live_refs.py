"""The storage keys that live objects reference (what the clean-up must never remove).

Invariants: :meth:`ReferencedKeys.collect` returns every ``$bubuStorageRef`` key found
anywhere in the given objects (metadata, spec and status); an object's keys are computed
once per ``(uid, resourceVersion)`` and the memo holds only objects seen in the last
collection, so its size follows the number of live objects.
"""

from __future__ import annotations

from collections.abc import Iterable

from bobrapet.storage.refs import storage_keys
from bobrapet.store.client import Resource


def _identity(obj: Resource) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("uid") or ""), str(metadata.get("resourceVersion") or "")


class ReferencedKeys:
    """Memoised storage keys of objects."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[str, frozenset[str]]] = {}

    def of(self, obj: Resource) -> frozenset[str]:
        """The keys ``obj`` references (memoised while its resourceVersion stays)."""
        uid, version = _identity(obj)
        hit = self._memo.get(uid) if uid else None
        if hit is not None and hit[0] == version:
            return hit[1]
        keys = frozenset(storage_keys(obj))
        if uid:
            self._memo[uid] = (version, keys)
        return keys

    def collect(self, objects: Iterable[Resource]) -> set[str]:
        """Every key referenced by ``objects``; forgets the objects not among them."""
        found: set[str] = set()
        seen: set[str] = set()
        for obj in objects:
            keys = self.of(obj)
            seen.add(_identity(obj)[0])
            if keys:
                found.update(keys)
        for uid in [u for u in self._memo if u not in seen]:
            del self._memo[uid]
        return found

    def __len__(self) -> int:
        return len(self._memo)
