"""Secondary index entries derived from an object (labels, selectable fields, owners).

Invariant: for every stored object the ``idx`` table holds exactly
:func:`index_entries` of its current state and the ``owners`` table exactly
:func:`owner_uids`; the writer keeps them in sync in the same transaction as
the object row.
"""

from __future__ import annotations

from typing import Any

from bobrapet.api.kinds import Kind
from bobrapet.store.selectors import field_string, lookup_path

LABEL_PREFIX = "l"
FIELD_PREFIX = "f"


def selectable_paths(kind: Kind) -> tuple[str, ...]:
    """The kind's selectable field paths without the leading dot (``spec.stepId``)."""
    return tuple(p.lstrip(".") for p in kind.selectable_fields)


def field_set(kind: Kind, obj: dict[str, Any]) -> dict[str, str]:
    """Values of every field a field selector may name (missing fields are absent)."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": str(meta.get("name") or "")}
    fields["metadata.namespace"] = str(meta.get("namespace") or "")
    for path in selectable_paths(kind):
        value = field_string(lookup_path(obj, path))
        if value is not None:
            fields[path] = value
    return fields


def index_entries(kind: Kind, obj: dict[str, Any]) -> set[tuple[str, str]]:
    """``(key, value)`` pairs: ``l<label>`` per label, ``f<path>`` per selectable field present."""
    entries: set[tuple[str, str]] = set()
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for key, value in labels.items():
        entries.add((LABEL_PREFIX + key, str(value)))
    for path in selectable_paths(kind):
        value = field_string(lookup_path(obj, path))
        if value is not None:
            entries.add((FIELD_PREFIX + path, value))
    return entries


def owner_uids(obj: dict[str, Any]) -> set[str]:
    """UIDs of every owner named in ``metadata.ownerReferences``."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return {str(ref["uid"]) for ref in refs if isinstance(ref, dict) and ref.get("uid")}
