"""How admission reads other objects: the :class:`Lookup` protocol (and an in-memory one),
and the :class:`HydrateInputs` seam through which it reads offloaded payloads.

Invariant: admission never writes; it only ``get``s/``list``s through a Lookup the caller
supplies (the embedded store, the Kubernetes client, or :class:`MemoryLookup` in tests and
offline validation), and reads storage only through a :class:`HydrateInputs` the caller may
supply (none: offloaded payloads are checked as references).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, Protocol

from bobrapet.api.kinds import Kind, for_object


class Lookup(Protocol):
    async def get(self, kind: Kind, name: str, namespace: str | None) -> dict[str, Any] | None:
        """The stored object, or ``None`` when it does not exist."""
        ...

    async def list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        """Every stored object of ``kind`` (all namespaces when ``namespace`` is None)."""
        ...


class HydrateInputs(Protocol):
    async def __call__(self, value: Any) -> Any:
        """``value`` with its ``$bubuStorageRef`` maps replaced by the stored data; raises
        (with a message saying why) when a blob cannot be read."""
        ...


class MemoryLookup:
    """A dict-backed :class:`Lookup` over wire-form objects (for tests and ``validate``)."""

    def __init__(self, objects: Iterable[dict[str, Any]] = ()) -> None:
        self._objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        for obj in objects:
            self.add(obj)

    def add(self, obj: dict[str, Any]) -> None:
        kind = for_object(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if kind is None:
            raise ValueError(f"unknown kind {obj.get('apiVersion')}/{obj.get('kind')}")
        meta = obj.get("metadata") or {}
        ns = (meta.get("namespace") or "default") if kind.namespaced else None
        self._objects[(kind.kind, ns, str(meta.get("name", "")))] = copy.deepcopy(obj)

    async def get(self, kind: Kind, name: str, namespace: str | None) -> dict[str, Any] | None:
        ns = (namespace or "default") if kind.namespaced else None
        obj = self._objects.get((kind.kind, ns, name))
        return copy.deepcopy(obj) if obj is not None else None

    async def list(self, kind: Kind, namespace: str | None) -> list[dict[str, Any]]:
        ns = (namespace or "default") if kind.namespaced else None
        return [
            copy.deepcopy(o)
            for (k, n, _), o in sorted(self._objects.items(), key=lambda kv: kv[0][2])
            if k == kind.kind and (namespace is None or not kind.namespaced or n == ns)
        ]
