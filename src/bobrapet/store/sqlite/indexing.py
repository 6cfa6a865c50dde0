"""Secondary index entries derived from an object (labels, selectable fields, owners).

Invariant: for every stored object the ``idx`` table holds exactly
:func:`index_entries` of its current state and the ``owners`` table exactly
:func:`owner_uids`; the writer keeps them in sync in the same transaction as
the object row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bobrapet.api.kinds import Kind
from bobrapet.store.selectors import field_string

LABEL_PREFIX = "l"
FIELD_PREFIX = "f"


#: Per kind (by identity): its selectable paths, each with its dotted parts.
_PATHS: dict[int, tuple[Kind, tuple[tuple[str, tuple[str, ...]], ...]]] = {}


def _split_paths(kind: Kind) -> tuple[tuple[str, tuple[str, ...]], ...]:
    cached = _PATHS.get(id(kind))
    if cached is not None and cached[0] is kind:
        return cached[1]
    paths = tuple((p, tuple(p.split("."))) for p in (f.lstrip(".") for f in kind.selectable_fields))
    _PATHS[id(kind)] = (kind, paths)
    return paths


def selectable_paths(kind: Kind) -> tuple[str, ...]:
    """The kind's selectable field paths without the leading dot (``spec.stepId``)."""
    return tuple(path for path, _ in _split_paths(kind))


def _value(obj: Any, parts: tuple[str, ...]) -> str | None:
    """``field_string(lookup_path(obj, path))`` for a path split into ``parts`` (hot: every write)."""
    for part in parts:
        if type(obj) is not dict and not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return field_string(obj)


def field_set(kind: Kind, obj: dict[str, Any]) -> dict[str, str]:
    """Values of every field a field selector may name (missing fields are absent)."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": str(meta.get("name") or "")}
    fields["metadata.namespace"] = str(meta.get("namespace") or "")
    for path, parts in _split_paths(kind):
        value = _value(obj, parts)
        if value is not None:
            fields[path] = value
    return fields


def index_entries(kind: Kind, obj: dict[str, Any], *, status_only: bool = False) -> set[tuple[str, str]]:
    """``(key, value)`` pairs: ``l<label>`` per label, ``f<path>`` per selectable field present.

    ``status_only``: just the ``status.*`` fields (a status write changes nothing else).
    """
    entries: set[tuple[str, str]] = set()
    if not status_only:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        for key, value in labels.items():
            entries.add((LABEL_PREFIX + key, str(value)))
    for path, parts in _split_paths(kind):
        if status_only and parts[0] != "status":
            continue
        value = _value(obj, parts)
        if value is not None:
            entries.add((FIELD_PREFIX + path, value))
    return entries


def owner_uids(obj: dict[str, Any]) -> set[str]:
    """UIDs of every owner named in ``metadata.ownerReferences``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return {str(ref["uid"]) for ref in refs if isinstance(ref, dict) and ref.get("uid")}
