"""Turning ``PATCHED`` change-log rows back into whole objects for watchers.

A status merge patch (:meth:`~bobrapet.store.sqlite.client.SqliteClient.patch_status`)
logs ``{"metadata": {name, namespace, resourceVersion}, "base": <rv>, "status": <patch>}``
instead of the whole object. A watch keeps, per object, the state it last delivered (a
reference: informers keep these objects anyway), and applies the next patch to it (copy
on write: the cost is the patch's, not the object's). Watchers never see a ``PATCHED``
event: they get ``MODIFIED`` with the whole object, as from any other write.

Invariants:

* a delivered object is exactly the stored state at the event's resourceVersion;
* when the watch does not hold the state the patch applies to (the watch started after
  it, or it lagged and skipped one), the object is read from the
  ``objects`` table if it is still at that resourceVersion; otherwise the event is not
  delivered — a later event of the same object is in the log (every write appends one),
  and that one is delivered (a lagging watcher sees fewer intermediate states of a
  patched object, never a wrong or older one);
* objects delivered for successive patches share the values the patches did not touch:
  treat watched objects as read-only (as informer caches do) and copy before changing.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bobrapet.store.sqlite import mergepatch

Obj = dict[str, Any]


class PatchedObjects:
    """The last delivered state of each (not deleted) object of one watch."""

    def __init__(self, conn: sqlite3.Connection, kind_key: str) -> None:
        self._conn = conn
        self._kind_key = kind_key
        self._last: dict[tuple[str, str], Obj] = {}

    def seen(self, obj: Obj, deleted: bool = False) -> None:
        """A whole-object event of ``obj`` was delivered: its next patch applies to it."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if deleted:
            self._last.pop(key, None)
        else:
            self._last[key] = obj

    def resolve(self, rv: int, data: str) -> Obj | None:
        """The whole object at ``rv`` for the ``PATCHED`` row ``data``; ``None``: skip the event."""
        row: Obj = json.loads(data)
        meta = row.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        base = self._last.get(key)
        if base is not None and (base.get("metadata") or {}).get("resourceVersion") == row.get("base"):
            patched: Obj = mergepatch.apply(
                base, {"metadata": {"resourceVersion": str(rv)}, "status": row.get("status")}
            )
            self._last[key] = patched
            return patched
        found = self._conn.execute(
            "SELECT rv, data FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
            (self._kind_key, *key),
        ).fetchone()
        if found is None or int(found[0]) != rv:
            self._last.pop(key, None)
            return None
        current: Obj = json.loads(found[1])
        self._last[key] = current
        return current
