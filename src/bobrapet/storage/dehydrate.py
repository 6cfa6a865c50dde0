"""Dehydration: replacing values above the inline limit by storage references (§7.3).

Recursive over the value, with the dotted key path of each sub-value:

* a string longer than the limit (UTF-8 bytes) is offloaded ``raw`` (``text/plain``);
* an object or array: its children are processed first; if none was offloaded and its
  encoding is larger than the limit, the whole container is offloaded as JSON; if some child
  was offloaded (or already was a reference) and the partly dehydrated container is still
  larger than :data:`BULK_THRESHOLD` (256 KiB), the original container is offloaded in bulk;
* other scalars are offloaded when their encoding exceeds the limit;
* a value nested deeper than the maximum recursion depth is offloaded whole;
* :meth:`Dehydrator.dehydrate_inputs` also offloads the whole result (``input.json``) while it
  is still larger than the limit;
* an existing reference map is kept as it is (a step may pass on what it received);
* with no store, a value that needs offloading raises
  :class:`~bobrapet.storage.errors.StorageDisabled`.

Blobs are written to ``<prefix>/<id>/<key path>.json`` (``output.json`` for the whole value);
each key of the path is percent-encoded (``.``, ``/`` and anything outside ``[A-Za-z0-9_-]``),
so distinct paths never share a blob and a key never leaves ``<prefix>/<id>/``.
Standard library only.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from bobrapet.storage.backend import BlobStore
from bobrapet.storage.envelope import ENCODER, JSON, RAW, Kind, content_type_of, envelope_chunks
from bobrapet.storage.errors import StorageDisabled
from bobrapet.storage.refs import DEFAULT_MAX_DEPTH, STORAGE_REF, check_key, make_ref

BULK_THRESHOLD: Final = 256 * 1024
_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MAX_NAME: Final = 200


def exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` is more than ``limit`` bytes in UTF-8 (encodes only when it must)."""
    n = len(text)
    return n > limit or (n * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit)


def encoded_size(value: Any) -> int:
    """Bytes of the compact JSON encoding of ``value``."""
    return len(ENCODER.encode(value).encode("utf-8", "surrogatepass"))


def _escape(key: str) -> str:
    return "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in key)


def blob_name(path: str) -> str:
    """The file name of the blob of the sub-value at dotted ``path`` (already escaped)."""
    name = path or "output"
    if len(name) > _MAX_NAME:
        name = name[:120] + "-" + hashlib.sha256(name.encode()).hexdigest()[:16]
    return name + ".json"


class Dehydrator:
    """Offloads the parts of one value above ``limit`` bytes to ``store`` under ``prefix/id``."""

    def __init__(
        self,
        store: BlobStore | None,
        *,
        limit: int,
        prefix: str,
        id: str,
        max_depth: int = DEFAULT_MAX_DEPTH,
        bulk: int = BULK_THRESHOLD,
        schema: str | None = None,
        schema_version: str | None = None,
        what: str = "output",
    ) -> None:
        self.store = store
        self.limit = max(0, limit)
        self.base = check_key(f"{prefix.strip('/')}/{id.strip('/')}")
        self.max_depth = max_depth
        self.bulk = bulk
        self.schema = schema
        self.schema_version = schema_version
        self.what = what
        #: Keys written by this dehydrator, in order.
        self.written: list[str] = []

    def dehydrate(self, value: Any) -> Any:
        """``value`` with its large parts replaced by references."""
        return self._walk(value, "", 0)[0]

    def dehydrate_inputs(self, value: Any) -> Any:
        """:meth:`dehydrate`, then the whole result offloaded while it is above the limit."""
        result = self.dehydrate(value)
        text = ENCODER.encode(result)
        if exceeds(text, self.limit):
            return self._offload(JSON, text, "input")
        return result

    # ------------------------------------------------------------------ the walk

    def _walk(self, value: Any, path: str, depth: int) -> tuple[Any, bool]:
        """(dehydrated value, whether it is or holds a reference)."""
        kind = type(value)
        if kind is str:
            if exceeds(value, self.limit):
                return self._offload(RAW, ENCODER.encode(value), path), True
            return value, False
        if kind is dict or kind is list or isinstance(value, dict | list):
            if isinstance(value, dict) and STORAGE_REF in value:
                return value, True
            if depth > self.max_depth:
                return self._offload(JSON, ENCODER.encode(value), path), True
            return self._container(value, path, depth)
        if value is None or kind is bool or kind is int:
            return value, False  # never above any useful limit
        text = ENCODER.encode(value)
        if exceeds(text, self.limit):
            return self._offload(JSON, text, path), True
        return value, False

    def _container(self, value: dict[str, Any] | list[Any], path: str, depth: int) -> tuple[Any, bool]:
        held = False
        out: Any
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                child = _escape(str(key))
                out[key], ref = self._walk(item, f"{path}.{child}" if path else child, depth + 1)
                held = held or ref
        else:
            out = []
            for index, item in enumerate(value):
                child = str(index)
                result, ref = self._walk(item, f"{path}.{child}" if path else child, depth + 1)
                out.append(result)
                held = held or ref
        if not held:
            text = ENCODER.encode(value)
            if exceeds(text, self.limit):
                return self._offload(JSON, text, path), True
            return value, False
        if exceeds(ENCODER.encode(out), self.bulk):
            return self._offload(JSON, ENCODER.encode(value), path), True
        return out, True

    def _offload(self, kind: Kind, data_json: str, path: str) -> dict[str, Any]:
        if self.store is None:
            size = len(data_json.encode("utf-8", "surrogatepass"))
            raise StorageDisabled(
                f"{self.what} value {path or '(whole value)'} is about {size} bytes, above the inline "
                f"limit of {self.limit} bytes, and storage is disabled; enable storage "
                "(controller.storage.provider: file or s3; BUBU_STORAGE_PROVIDER), raise the limit "
                "(engram.default-max-inline-size or the step's execution.maxInlineSize), or make "
                "the value smaller"
            )
        key = check_key(f"{self.base}/{blob_name(path)}")
        self.store.write(key, envelope_chunks(kind, data_json))
        self.written.append(key)
        return make_ref(key, content_type_of(kind), schema=self.schema, schema_version=self.schema_version)
