"""One write transaction: resourceVersion allocation, rows, index entries, change log.

Invariants kept by :class:`WriteTxn`:

* it runs inside ``BEGIN IMMEDIATE``, so resourceVersions are allocated under
  the database write lock and are strictly increasing across processes;
* every object write (insert, replace, remove) allocates exactly one new
  resourceVersion and appends exactly one ``events`` row with that version and
  the object state (``DELETED`` rows carry the last state, stamped with the
  deletion's resourceVersion, as the Kubernetes watch cache does) — or, for a
  status merge patch, a ``PATCHED`` row with only the patch (see :mod:`.patched`);
* the ``idx``/``owners`` rows of an object always match its stored state;
* nothing is visible to other connections until the ``with`` block exits
  normally; any exception inside it rolls everything back;
* SQLite failures (a lock held past the busy timeout, a full disk) leave it as
  :class:`~bobrapet.api.errors.StatusError` (see :mod:`.errors`), after the rollback.
"""

from __future__ import annotations

import json
import sqlite3
from types import TracebackType
from typing import Any

from bobrapet.api.kinds import ALL_KINDS, Kind
from bobrapet.store.sqlite.errors import store_error
from bobrapet.store.sqlite.indexing import index_entries, owner_uids, selectable_paths
from bobrapet.store.sqlite.schema import current_rv

Obj = dict[str, Any]
KIND_BY_KEY: dict[str, Kind] = {k.qualified_plural: k for k in ALL_KINDS}
#: Change-log type of a status merge patch (watchers turn it into MODIFIED with the whole object).
PATCHED = "PATCHED"


#: One compact encoder for every row (``json.dumps`` with arguments builds a new one per call).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(obj: Obj) -> str:
    return _ENCODER.encode(obj)


def set_path(target: Obj, dotted: str, value: Any) -> None:
    """``target[a][b] = value`` for ``dotted`` = ``"a.b"`` (intermediate maps created)."""
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = value


def namespace_key(kind: Kind, obj: Obj) -> str:
    return str(obj["metadata"].get("namespace") or "") if kind.namespaced else ""


class WriteTxn:
    """A ``BEGIN IMMEDIATE`` transaction that records object writes and their events."""

    def __init__(self, conn: sqlite3.Connection, *, retention: int, prune_every: int, path: str = "") -> None:
        self.conn = conn
        self.path = path
        self.retention = retention
        self.prune_every = prune_every
        self.writes = 0
        #: Kinds (qualified plurals) that got change-log events in this transaction.
        self.kinds: set[str] = set()
        self._rv = 0
        self._start_rv = 0

    def __enter__(self) -> WriteTxn:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self._rv = self._start_rv = current_rv(self.conn)
        except sqlite3.Error as exc:
            self._rollback()
            raise store_error(self.path, exc) from exc
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._rollback()
            if isinstance(exc, sqlite3.Error):
                raise store_error(self.path, exc) from exc
            return
        try:
            # the new resourceVersion is recorded by its events rows (see schema.CURRENT_RV)
            if self._rv // self.prune_every != self._start_rv // self.prune_every:
                self._prune()
            self.conn.execute("COMMIT")
        except sqlite3.Error as failure:
            self._rollback()
            raise store_error(self.path, failure) from failure
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (SQLite ends some on its own on I/O errors)."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    # ------------------------------------------------------------------ reads

    def row(self, kind: Kind, namespace: str, name: str) -> tuple[int, Obj] | None:
        found = self.conn.execute(
            "SELECT oid, data FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
            (kind.qualified_plural, namespace, name),
        ).fetchone()
        return None if found is None else (int(found[0]), json.loads(found[1]))

    def status_row(self, kind: Kind, namespace: str, name: str) -> tuple[int, Obj, str | None, Obj] | None:
        """``(oid, object without status, status JSON text, status fields a selector may name)``.

        The status is left as text: decoding it would cost as much as the status write that
        reads this row (a run's size is mostly its status).
        """
        paths = [p for p in selectable_paths(kind) if p.startswith("status.")]
        extra = "".join(", json_extract(data, ?)" for _ in paths)
        found = self.conn.execute(
            f"SELECT oid, json_remove(data, '$.status'), json_extract(data, '$.status'){extra} "
            "FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
            (*(f"$.{p}" for p in paths), kind.qualified_plural, namespace, name),
        ).fetchone()
        if found is None:
            return None
        fields: Obj = {}
        for path, value in zip(paths, found[3:], strict=True):
            if value is not None:
                set_path(fields, path, value)
        return int(found[0]), json.loads(found[1]), found[2], fields

    def replace_status(self, kind: Kind, oid: int, old_fields: Obj, new: Obj, status_text: str) -> None:
        """Overwrite the status of a stored object (``new`` holds the object with its new status,
        ``status_text`` that status as JSON; ``old_fields`` the old selectable status fields)."""
        rv = self._next_rv(new)
        head = dumps({k: v for k, v in new.items() if k != "status"})
        data = f'{head[:-1]},"status":{status_text}}}'
        self.conn.execute("UPDATE objects SET rv = ?, data = ? WHERE oid = ?", (rv, data, oid))
        # a status write changes no label or spec field: only the status entries can differ
        self._write_index(
            kind,
            oid,
            index_entries(kind, old_fields, status_only=True),
            index_entries(kind, new, status_only=True),
        )
        self._event(rv, kind, namespace_key(kind, new), "MODIFIED", data)

    def head_row(self, kind: Kind, namespace: str, name: str) -> tuple[int, int, str] | None:
        """``(oid, resourceVersion, uid)`` of a stored object, without reading its JSON."""
        found = self.conn.execute(
            "SELECT oid, rv, uid FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
            (kind.qualified_plural, namespace, name),
        ).fetchone()
        return None if found is None else (int(found[0]), int(found[1]), str(found[2]))

    def patch_status(self, kind: Kind, oid: int, old: Obj, new: Obj, patch_text: str) -> int:
        """Apply the merge patch ``patch_text`` (of ``status``) to a stored object in SQL.

        ``old``/``new`` are the object before and after (for the index entries; ``new``
        gets the new resourceVersion). The change log gets a ``PATCHED`` row holding only
        the object's identity, the base resourceVersion and the patch (see :mod:`.patched`),
        so neither the row nor the log entry is re-encoded here: the bytes encoded and logged
        are those of the change, not of the object.
        """
        base = old["metadata"]["resourceVersion"]
        rv = self._next_rv(new)
        # one merge patch (status and resourceVersion together): SQLite parses and re-encodes
        # the stored object once
        self.conn.execute(
            "UPDATE objects SET rv = ?, data = json_patch(data, ?) WHERE oid = ?",
            (rv, f'{{"metadata":{{"resourceVersion":"{rv}"}},"status":{patch_text}}}', oid),
        )
        self._write_index(kind, oid, index_entries(kind, old), index_entries(kind, new))
        meta = new["metadata"]
        ident = {"name": meta["name"], "resourceVersion": str(rv)}
        if meta.get("namespace"):
            ident["namespace"] = meta["namespace"]
        head = dumps({"metadata": ident, "base": str(base)})
        self._event(rv, kind, namespace_key(kind, new), PATCHED, f'{head[:-1]},"status":{patch_text}}}')
        return rv

    def row_by_oid(self, oid: int) -> tuple[Kind, Obj] | None:
        found = self.conn.execute("SELECT kind, data FROM objects WHERE oid = ?", (oid,)).fetchone()
        return None if found is None else (KIND_BY_KEY[found[0]], json.loads(found[1]))

    def uid_exists(self, uid: str) -> bool:
        return self.conn.execute("SELECT 1 FROM objects WHERE uid = ?", (uid,)).fetchone() is not None

    def dependents(self, owner_uid: str) -> list[int]:
        rows = self.conn.execute("SELECT oid FROM owners WHERE owner_uid = ?", (owner_uid,)).fetchall()
        return [int(r[0]) for r in rows]

    def dangling_owner_uids(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT owner_uid FROM owners WHERE owner_uid NOT IN (SELECT uid FROM objects)"
        ).fetchall()
        return [str(r[0]) for r in rows]

    # ----------------------------------------------------------------- writes

    def _next_rv(self, obj: Obj) -> int:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        self.writes += 1
        return self._rv

    def _event(self, rv: int, kind: Kind, namespace: str, type_: str, data: str) -> None:
        self.kinds.add(kind.qualified_plural)
        self.conn.execute(
            "INSERT INTO events (rv, kind, namespace, type, data) VALUES (?, ?, ?, ?, ?)",
            (rv, kind.qualified_plural, namespace, type_, data),
        )

    def insert(self, kind: Kind, obj: Obj) -> int | None:
        """Store a new object; stamps its resourceVersion. ``None`` (nothing written, no version
        allocated) when the name is taken: the unique key of the row is the check."""
        meta = obj["metadata"]
        ns = namespace_key(kind, obj)
        rv = self._rv + 1
        meta["resourceVersion"] = str(rv)
        data = dumps(obj)
        try:
            cur = self.conn.execute(
                "INSERT INTO objects (kind, namespace, name, uid, rv, data) VALUES (?, ?, ?, ?, ?, ?)",
                (kind.qualified_plural, ns, meta["name"], meta["uid"], rv, data),
            )
        except sqlite3.IntegrityError as exc:
            # only (kind, namespace, name) can clash: uids are fresh uuid4s
            if "objects.name" not in str(exc):
                raise
            del meta["resourceVersion"]
            return None
        self._next_rv(obj)
        oid = int(cur.lastrowid or 0)
        self._write_index(kind, oid, set(), index_entries(kind, obj))
        self._write_owners(oid, set(), owner_uids(obj))
        self._event(rv, kind, ns, "ADDED", data)
        return oid

    def replace(self, kind: Kind, oid: int, old: Obj, new: Obj) -> None:
        """Overwrite a stored object; stamps a new resourceVersion on ``new``."""
        rv = self._next_rv(new)
        data = dumps(new)
        self.conn.execute("UPDATE objects SET rv = ?, data = ? WHERE oid = ?", (rv, data, oid))
        self._write_index(kind, oid, index_entries(kind, old), index_entries(kind, new))
        self._write_owners(oid, owner_uids(old), owner_uids(new))
        self._event(rv, kind, namespace_key(kind, new), "MODIFIED", data)

    def remove(self, kind: Kind, oid: int, obj: Obj, stored: Obj | None = None) -> None:
        """Delete a stored object; ``obj`` (its last state) gets the deletion's resourceVersion.

        ``stored`` is the state in the ``objects`` row when ``obj`` differs from it (an update
        that empties the finalizers): its index and owner entries are the ones to remove.
        """
        rv = self._next_rv(obj)
        row = obj if stored is None else stored
        self.conn.execute("DELETE FROM objects WHERE oid = ?", (oid,))
        self._write_index(kind, oid, index_entries(kind, row), set())
        self._write_owners(oid, owner_uids(row), set())
        self._event(rv, kind, namespace_key(kind, obj), "DELETED", dumps(obj))

    def _write_index(
        self, kind: Kind, oid: int, old: set[tuple[str, str]], new: set[tuple[str, str]]
    ) -> None:
        key = kind.qualified_plural
        gone = old - new
        if gone:
            self.conn.executemany(
                "DELETE FROM idx WHERE kind = ? AND key = ? AND value = ? AND oid = ?",
                [(key, k, v, oid) for k, v in gone],
            )
        added = new - old
        if added:
            self.conn.executemany(
                "INSERT OR IGNORE INTO idx (kind, key, value, oid) VALUES (?, ?, ?, ?)",
                [(key, k, v, oid) for k, v in added],
            )

    def _write_owners(self, oid: int, old: set[str], new: set[str]) -> None:
        gone = old - new
        if gone:
            self.conn.executemany(
                "DELETE FROM owners WHERE owner_uid = ? AND oid = ?", [(u, oid) for u in gone]
            )
        added = new - old
        if added:
            self.conn.executemany(
                "INSERT OR IGNORE INTO owners (owner_uid, oid) VALUES (?, ?)", [(u, oid) for u in added]
            )

    def _prune(self) -> None:
        # the newest row always stays: it records the last allocated resourceVersion
        cutoff = self._rv - max(1, self.retention)
        if cutoff <= 0:
            return
        self.conn.execute("DELETE FROM events WHERE rv <= ?", (cutoff,))
        self.conn.execute(
            "UPDATE meta SET value = MAX(value, ?) WHERE key = 'compacted'",
            (cutoff,),
        )
