"""Hydration: replacing storage references by the values they name (§7.3, reverse).

Invariants:

* a map holding ``$bubuStorageRef`` is parsed strictly (:func:`~bobrapet.storage.refs.parse_ref`:
  malformed or traversing references fail), replaced by the stored ``data``, narrowed by its
  ``$bubuStoragePath`` selector, and hydrated again (stored values may hold references);
* each blob is loaded at most once per :class:`Hydrator` (several selectors into one blob
  share the load);
* ``$bubuConfigMapRef``/``$bubuSecretRef`` maps are resolved by the ``kube`` callback when
  one is given, else left as they are (the controller's variant);
* nesting deeper than ``max_depth`` is an error; a value without references is returned as is
  (not copied).

Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bobrapet.storage.backend import BlobStore
from bobrapet.storage.envelope import parse_envelope
from bobrapet.storage.errors import PayloadTooLarge, SelectorError, StorageError
from bobrapet.storage.refs import (
    CONFIGMAP_REF,
    DEFAULT_MAX_DEPTH,
    SECRET_REF,
    STORAGE_REF,
    contains_kube_refs,
    contains_refs,
    parse_ref,
)
from bobrapet.storage.selector import select

#: Loads the stored ``data`` of one key.
Loader = Callable[[str], Any]
#: Resolves one ConfigMap/Secret reference map to its value.
KubeResolver = Callable[[Mapping[str, Any]], Any]


class StoreLoader:
    """Loads envelopes from ``store``; with ``budget``, at most that many bytes in total."""

    def __init__(self, store: BlobStore, *, budget: int | None = None) -> None:
        self.store = store
        self.budget = budget
        self.loaded = 0

    def __call__(self, key: str) -> Any:
        limit = None if self.budget is None else self.budget - self.loaded
        try:
            raw = self.store.read(key, limit=limit)
        except PayloadTooLarge:
            assert self.budget is not None
            raise PayloadTooLarge(
                f"hydrating {key!r} would load more than {self.budget} bytes of offloaded data "
                "(the in-process hydration cap)"
            ) from None
        self.loaded += len(raw)
        return parse_envelope(raw, key)


class Hydrator:
    """Hydrates values with ``load`` (see the module invariants)."""

    def __init__(
        self, load: Loader, *, max_depth: int = DEFAULT_MAX_DEPTH, kube: KubeResolver | None = None
    ) -> None:
        self._load = load
        self.max_depth = max_depth
        self.kube = kube
        self._blobs: dict[str, Any] = {}

    def blob(self, key: str) -> Any:
        """The stored data of ``key`` (loaded once)."""
        if key not in self._blobs:
            self._blobs[key] = self._load(key)
        return self._blobs[key]

    def needed(self, value: Any) -> bool:
        """Whether ``value`` holds anything this hydrator would replace."""
        return contains_refs(value, self.max_depth) or (
            self.kube is not None and contains_kube_refs(value, self.max_depth)
        )

    def hydrate(self, value: Any) -> Any:
        """``value`` with every reference replaced (a value without any is returned as is)."""
        if not self.needed(value):
            return value
        return self._walk(value, 0)

    def resolve_ref(self, ref_map: Mapping[str, Any]) -> Any:
        """The value one storage reference map names (not hydrated further)."""
        ref = parse_ref(ref_map)
        data = self.blob(ref.key)
        if not ref.path:
            return data
        try:
            return select(data, ref.path)
        except SelectorError as exc:
            raise SelectorError(f"storage reference {ref.key!r}, path {ref.path!r}: {exc}") from None

    def _walk(self, value: Any, depth: int) -> Any:
        if depth > self.max_depth:
            raise StorageError(
                f"maximum recursion depth ({self.max_depth}) exceeded during hydration "
                "(BUBU_MAX_RECURSION_DEPTH)"
            )
        if isinstance(value, dict):
            if STORAGE_REF in value:
                return self._walk(self.resolve_ref(value), depth + 1)
            if self.kube is not None and (CONFIGMAP_REF in value or SECRET_REF in value):
                return self.kube(value)
            return {k: self._walk(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, depth + 1) for v in value]
        return value
