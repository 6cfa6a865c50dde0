"""The embedded store: :class:`SqliteClient`, a Kubernetes-semantics Client on SQLite.

One SQLite file (WAL mode) may be shared by several processes, each with its
own client. Writes run in short ``BEGIN IMMEDIATE`` transactions on the
client's single connection; resourceVersions are allocated inside them, so
they are globally monotonic. Methods are ``async`` for the Client protocol but
talk to SQLite synchronously (no thread hop): every call is a few statements.

Invariants:

* returned objects are fresh dicts: callers may mutate them freely, and the
  objects callers pass in are never mutated;
* nothing is written when admission, validation or a precondition fails;
* an update or status update that changes nothing writes nothing and returns
  the stored object with its current resourceVersion;
* ``writes`` counts committed object writes (each one is one resourceVersion
  and one watch event);
* SQLite failures surface as :class:`StatusError` (``503 ServiceUnavailable``
  when another process holds the write lock past ``busy_timeout``), never as
  ``sqlite3`` exceptions.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from bobrapet.api.errors import AlreadyExists, BadRequest, Cause, Conflict, Invalid, NotFound, StatusError
from bobrapet.api.kinds import Kind, for_object, known_api_versions
from bobrapet.store.admission_hook import Admission, TrustedAdmission
from bobrapet.store.client import WatchEvent
from bobrapet.store.selectors import (
    FieldSelector,
    LabelSelector,
    parse_field_selector,
    parse_label_selector,
)
from bobrapet.store.sqlite import gc, mergepatch
from bobrapet.store.sqlite.checkpoint import BACKSTOP_FRAMES, EVERY_COMMITS, Checkpointer
from bobrapet.store.sqlite.errors import translated
from bobrapet.store.sqlite.indexing import FIELD_PREFIX, LABEL_PREFIX, field_set, selectable_paths
from bobrapet.store.sqlite.objectmeta import (
    DEFAULT_NAMESPACE,
    check_metadata,
    format_time,
    generate_name,
    is_being_removed,
    metadata_of,
    normalise_namespace,
    prepare_create,
    prepare_status,
    prepare_update,
    same_object,
)
from bobrapet.store.sqlite.schema import BUSY_TIMEOUT_MS, connect, current_rv
from bobrapet.store.sqlite.watch import ChangeFeed, Notifier, parse_since, watch_events
from bobrapet.store.sqlite.writer import WriteTxn

Obj = dict[str, Any]

MODIFIED_DETAIL = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
_UPDATE_ATTEMPTS = 16
_GENERATE_ATTEMPTS = 8


#: Built once: ``json.dumps`` with arguments builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _json_text(obj: Any, what: str = "object") -> str:
    """``obj`` as compact JSON (BadRequest for anything JSON cannot hold)."""
    try:
        return _ENCODER.encode(obj)
    except (TypeError, ValueError) as exc:
        hint = " (NaN and Infinity are not JSON numbers)" if "float" in str(exc) else ""
        raise BadRequest(f"{what} is not valid JSON data: {exc}{hint}") from exc


def _copy(obj: Any, what: str = "object") -> Any:
    """A private deep copy of ``obj`` as JSON data (BadRequest for anything JSON cannot hold)."""
    return json.loads(_json_text(obj, what))


def _group(kind: Kind) -> str | None:
    return kind.group or None


def _not_found(kind: Kind, name: str) -> NotFound:
    return NotFound(kind.plural, name, group=_group(kind))


def _conflict(kind: Kind, name: str, detail: str = MODIFIED_DETAIL) -> Conflict:
    return Conflict(kind.plural, name, detail, group=_group(kind))


def _check_preconditions(kind: Kind, body_meta: Obj, current: Obj) -> None:
    """Different ``uid`` or stale ``resourceVersion`` in the body → Conflict (in that order).

    Custom resources (``kind.crd``) must carry a ``resourceVersion`` (Invalid
    otherwise): the API server does not allow unconditional updates of them, so
    code relying on it here would fail against Kubernetes. Core kinds
    (ConfigMap, Secret) may omit it.
    """
    name = str(current["metadata"]["name"])
    uid = body_meta.get("uid")
    if uid and uid != current["metadata"]["uid"]:
        raise _conflict(
            kind,
            name,
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: "
            f"{current['metadata']['uid']}",
        )
    rv = body_meta.get("resourceVersion")
    if rv not in (None, ""):
        if not str(rv).isdigit():
            raise BadRequest(
                f"{kind.kind} {name!r}: metadata.resourceVersion {rv!r} is not valid; "
                "use the value returned by the last read"
            )
        if str(rv) != current["metadata"]["resourceVersion"]:
            raise _conflict(kind, name)
    elif kind.crd:
        cause = Cause(
            "metadata.resourceVersion",
            "Invalid value: 0: must be specified for an update "
            "(send back the metadata.resourceVersion of the object you read)",
        )
        error = Invalid(kind.qualified_plural, name, [cause], group=_group(kind))
        error.kind = kind.plural  # worded as the API server does: stories.bubustack.io "x" is invalid
        raise error


class StoreLookup:
    """Read access to the store for admission (``get``/``list`` returning fresh dicts)."""

    def __init__(self, client: SqliteClient) -> None:
        self._client = client

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        return self._client._read(kind, self._client._namespace(kind, namespace), name)

    async def list(self, kind: Kind, namespace: str | None = None) -> list[Obj]:
        return await self._client.list(kind, namespace)


class SqliteClient:
    """A :class:`bobrapet.store.client.Client` backed by one SQLite file.

    ``admission`` (settable later as ``client.admission``, e.g. once it is built
    around ``client.lookup``) runs on create and update; status writes are
    admitted too (``subresource="status"``) only when ``admit_status`` is set.
    ``poll_interval`` bounds how late a watch sees another process's writes;
    ``event_retention`` is how many change-log entries are kept for watches
    (older ``since`` values get ``410 Expired``), pruned every ``prune_every``
    resourceVersions. ``busy_timeout`` (seconds) is how long a write waits for
    another process's transaction before failing with 503. ``checkpoint_every``:
    write transactions between two WAL checkpoints run on a background thread
    (see :mod:`.checkpoint`; ``None``: SQLite checkpoints inside the commits).
    A client belongs to one thread/event loop.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        admission: Admission | None = None,
        clock: Callable[[], datetime] | None = None,
        admit_status: bool = False,
        poll_interval: float = 0.025,
        event_retention: int = 10000,
        prune_every: int = 256,
        busy_timeout: float = BUSY_TIMEOUT_MS / 1000,
        checkpoint_every: int | None = EVERY_COMMITS,
    ) -> None:
        self.path = Path(path)
        self.admission: Admission | None = admission
        self.admit_status = admit_status
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.poll_interval = poll_interval
        self.event_retention = event_retention
        self.prune_every = prune_every
        self.writes = 0
        self.lookup = StoreLookup(self)
        self._conn = connect(self.path, busy_timeout)
        self._checkpointer: Checkpointer | None = None
        if checkpoint_every is not None:
            self._checkpointer = Checkpointer(self.path, checkpoint_every)
            self._conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_FRAMES}")
        self._key = str(self.path.resolve())
        self._closed = False
        #: The one change-log reader of this client's watches.
        self.feed = ChangeFeed(
            self._conn, self._key, poll_interval=poll_interval, is_closed=lambda: self._closed
        )

    # ------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection; running watches end (StopAsyncIteration)."""
        if self._closed:
            return
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.close()
        self._conn.close()
        Notifier.notify(self._key)

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> SqliteClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -------------------------------------------------------------- helpers

    def _ensure_open(self) -> None:
        if self._closed:
            raise StatusError(f"the store {self.path} is closed", reason="ServiceUnavailable", code=503)

    def _now(self) -> str:
        return format_time(self.clock())

    @staticmethod
    def _namespace(kind: Kind, namespace: str | None) -> str:
        if not kind.namespaced:
            return ""
        return namespace or DEFAULT_NAMESPACE

    @staticmethod
    def _kind_of(obj: Any) -> Kind:
        if not isinstance(obj, dict):
            raise BadRequest(f"an object must be a mapping, got {type(obj).__name__}")
        api_version, kind_name = obj.get("apiVersion"), obj.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind_name, str):
            raise BadRequest("apiVersion and kind are required (e.g. apiVersion: bubustack.io/v1alpha1)")
        kind = for_object(api_version, kind_name)
        if kind is None:
            raise BadRequest(
                f'no matches for kind "{kind_name}" in version "{api_version}" '
                f"(known apiVersions: {', '.join(known_api_versions())})"
            )
        return kind

    def _txn(self) -> WriteTxn:
        self._ensure_open()
        return WriteTxn(
            self._conn, retention=self.event_retention, prune_every=self.prune_every, path=str(self.path)
        )

    def _committed(self, txn: WriteTxn) -> None:
        if txn.writes:
            self.writes += txn.writes
            Notifier.notify(self._key, txn.kinds)
            if self._checkpointer is not None:
                self._checkpointer.committed()

    def _read(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        self._ensure_open()
        with translated(str(self.path)):
            row = self._conn.execute(
                "SELECT data FROM objects WHERE kind = ? AND namespace = ? AND name = ?",
                (kind.qualified_plural, namespace, name),
            ).fetchone()
        if row is None:
            return None
        obj: Obj = json.loads(row[0])
        return obj

    async def resource_version(self) -> str:
        """The newest resourceVersion of the whole store (a list/watch bookmark)."""
        return str(self._current_rv())

    def _current_rv(self) -> int:
        self._ensure_open()
        with translated(str(self.path)):
            return current_rv(self._conn)

    # ---------------------------------------------------------------- reads

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj:
        obj = self._read(kind, self._namespace(kind, namespace), name)
        if obj is None:
            raise _not_found(kind, name)
        return obj

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        labels: str | None = None,
        fields: str | None = None,
    ) -> list[Obj]:
        label_sel = parse_label_selector(labels)
        allowed = ("metadata.name", "metadata.namespace", *selectable_paths(kind))
        field_sel = parse_field_selector(fields, allowed)
        self._ensure_open()
        sql, params, exact = self._list_query(kind, namespace, label_sel, field_sel)
        with translated(str(self.path)):
            rows = self._conn.execute(sql, params).fetchall()
        objects = [json.loads(r[0]) for r in rows]
        if exact:
            return objects
        return [
            o
            for o in objects
            if label_sel.matches((o.get("metadata") or {}).get("labels"))
            and field_sel.matches(field_set(kind, o))
        ]

    def _list_query(
        self, kind: Kind, namespace: str | None, labels: LabelSelector, fields: FieldSelector
    ) -> tuple[str, builtins.list[Any], bool]:
        """SQL narrowing the rows by every indexable requirement; ``exact`` if nothing is left."""
        key = kind.qualified_plural
        sql = ["SELECT data FROM objects WHERE kind = ?"]
        params: builtins.list[Any] = [key]
        exact = True
        if kind.namespaced and namespace:
            sql.append("AND namespace = ?")
            params.append(namespace)
        sub = "AND oid IN (SELECT oid FROM idx WHERE kind = ? AND key = ?"
        for req in labels.requirements:
            if req.operator == "=":
                sql.append(sub + " AND value = ?)")
                params += [key, LABEL_PREFIX + req.key, req.values[0]]
            elif req.operator == "in":
                marks = ",".join("?" * len(req.values))
                sql.append(sub + f" AND value IN ({marks}))")
                params += [key, LABEL_PREFIX + req.key, *req.values]
            elif req.operator == "exists":
                sql.append(sub + ")")
                params += [key, LABEL_PREFIX + req.key]
            else:
                exact = False
        for freq in fields.requirements:
            if freq.operator != "=":
                exact = False
            elif freq.path == "metadata.name":
                sql.append("AND name = ?")
                params.append(freq.value)
            elif freq.path == "metadata.namespace":
                sql.append("AND namespace = ?")
                params.append(freq.value)
            elif freq.value:
                sql.append(sub + " AND value = ?)")
                params += [key, FIELD_PREFIX + freq.path, freq.value]
            else:
                exact = False
        if any(part.startswith(sub) for part in sql):
            # Drive the query from the (selective) index entries, not from every row of the kind.
            sql[0] = "SELECT data FROM objects WHERE +kind = ?"
            sql = [("AND +namespace = ?" if part == "AND namespace = ?" else part) for part in sql]
        sql.append("ORDER BY namespace, name")
        return " ".join(sql), params, exact

    # --------------------------------------------------------------- create

    async def create(
        self,
        obj: Obj,
        *,
        dry_run: bool = False,
        warnings: builtins.list[str] | None = None,
        trusted: bool = False,
        status: Obj | None = None,
    ) -> Obj:
        if status is not None and not trusted:
            raise BadRequest("a status can be given on create only for a trusted create")
        kind = self._kind_of(obj)
        body: Obj = _copy(obj)
        meta = metadata_of(kind, body)
        explicit_name = bool(meta.get("name"))
        prefix = meta.get("generateName") if isinstance(meta.get("generateName"), str) else None
        prepare_create(kind, body, self.clock(), str(uuid.uuid4()))
        check_metadata(kind, body, creating=True)
        admitted_warnings: builtins.list[str] = []
        if self.admission is not None:
            prepared = body
            short = None
            admit_trusted = getattr(self.admission, "admit_trusted", None) if trusted else None
            if admit_trusted is not None:
                # An engine-built child: the admission's short path, on ``body`` itself (already
                # a private copy; it is left alone when the answer is None). Only the identity
                # fields _enforce_create restores are kept aside.
                prepared = {"metadata": dict(body["metadata"])}
                short = cast(TrustedAdmission, self.admission).admit_trusted(body)
                if short is None:
                    prepared = body
            if short is not None:
                body, admitted_warnings = short
            else:
                admitted, admitted_warnings = await self.admission(_copy(prepared), None, subresource=None)
                body = _copy(admitted)
            self._enforce_create(kind, body, prepared)
        if status is not None:
            body["status"] = _copy(status)
        body_meta = body["metadata"]
        namespace = self._namespace(kind, body_meta.get("namespace"))
        if dry_run:
            if self._read(kind, namespace, body_meta["name"]) is not None:
                raise AlreadyExists(kind.plural, body_meta["name"], group=_group(kind))
        else:
            with self._txn() as txn:
                for _ in range(_GENERATE_ATTEMPTS):
                    if txn.insert(kind, body) is not None:
                        break
                    if explicit_name or not prefix:
                        raise AlreadyExists(kind.plural, body_meta["name"], group=_group(kind))
                    body_meta["name"] = generate_name(prefix)
                else:
                    raise AlreadyExists(kind.plural, body_meta["name"], group=_group(kind))
                gc.collect_if_orphaned(txn, body, self._now)
            self._committed(txn)
        if warnings is not None:
            warnings.extend(admitted_warnings)
        return body

    @staticmethod
    def _enforce_create(kind: Kind, body: Obj, prepared: Obj) -> None:
        """Admission may default fields but not system metadata, identity or status."""
        meta = metadata_of(kind, body)
        for field in ("name", "namespace", "uid", "creationTimestamp", "generation"):
            if field in prepared["metadata"]:
                meta[field] = prepared["metadata"][field]
        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        normalise_namespace(kind, body)
        if kind.status_subresource:
            body.pop("status", None)
        check_metadata(kind, body, creating=True)

    # --------------------------------------------------------------- update

    async def update(
        self, obj: Obj, *, dry_run: bool = False, warnings: builtins.list[str] | None = None
    ) -> Obj:
        kind = self._kind_of(obj)
        body: Obj = _copy(obj)
        body_meta = metadata_of(kind, body)
        name = body_meta.get("name")
        if not isinstance(name, str) or not name:
            check_metadata(kind, body, creating=False)
        assert isinstance(name, str)
        namespace = self._namespace(kind, body_meta.get("namespace"))
        admitted_warnings: builtins.list[str] = []
        for _ in range(_UPDATE_ATTEMPTS):
            old: Obj | None = None
            new: Obj | None = None
            if self.admission is not None:
                old = self._read(kind, namespace, name)
                if old is None:
                    raise _not_found(kind, name)
                _check_preconditions(kind, body_meta, old)
                candidate: Obj = _copy(body)
                prepare_update(kind, candidate, old)
                check_metadata(kind, candidate, creating=False)
                admitted, admitted_warnings = await self.admission(candidate, _copy(old), subresource=None)
                new = _copy(admitted)
                metadata_of(kind, new).update({"name": name, "namespace": namespace})
                prepare_update(kind, new, old)
                check_metadata(kind, new, creating=False)
            with self._txn() as txn:
                found = txn.row(kind, namespace, name)
                if found is None:
                    raise _not_found(kind, name)
                oid, current = found
                _check_preconditions(kind, body_meta, current)
                if old is not None and (
                    old["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
                ):
                    continue  # changed while admission ran: admit again against the new state
                if new is None:
                    new = body
                    prepare_update(kind, new, current)
                    check_metadata(kind, new, creating=False)
                if same_object(new, current):
                    result = current
                elif dry_run:
                    result = new
                elif is_being_removed(new):
                    gc.remove_and_cascade(txn, kind, oid, new, self._now(), stored=current)
                    result = new
                else:
                    txn.replace(kind, oid, current, new)
                    gc.collect_if_orphaned(txn, new, self._now)
                    result = new
            self._committed(txn)
            if warnings is not None:
                warnings.extend(admitted_warnings)
            return result
        raise _conflict(kind, name, "too many concurrent modifications while admitting; try again")

    async def update_status(self, obj: Obj) -> Obj:
        kind = self._kind_of(obj)
        if not kind.status_subresource:
            raise BadRequest(
                f"{kind.plural} have no status subresource; use update() to change the whole object"
            )
        meta = obj.get("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
            raise BadRequest(f"{kind.kind}: metadata.name is required for a status update")
        name = meta["name"]
        namespace = self._namespace(kind, meta.get("namespace"))
        if "status" in obj and (self.admission is None or not self.admit_status):
            return self._replace_status(kind, namespace, name, meta, obj["status"])
        body: Obj = {"status": _copy(obj["status"], "status")} if "status" in obj else {}
        for _ in range(_UPDATE_ATTEMPTS):
            old: Obj | None = None
            if self.admission is not None and self.admit_status:
                old = self._read(kind, namespace, name)
                if old is None:
                    raise _not_found(kind, name)
                _check_preconditions(kind, meta, old)
                candidate = _copy(prepare_status(body, old))
                admitted, _ = await self.admission(candidate, _copy(old), subresource="status")
                body = {"status": _copy(admitted["status"])} if "status" in admitted else {}
            with self._txn() as txn:
                found = txn.row(kind, namespace, name)
                if found is None:
                    raise _not_found(kind, name)
                oid, current = found
                _check_preconditions(kind, meta, current)
                if old is not None and (
                    old["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
                ):
                    continue  # changed while admission ran: admit again against the new state
                new = prepare_status(body, current)
                if same_object(new, current):
                    return current
                txn.replace(kind, oid, current, new)
            self._committed(txn)
            return new
        raise _conflict(kind, name, "too many concurrent modifications while admitting; try again")

    def _replace_status(self, kind: Kind, namespace: str, name: str, meta: Obj, status: Any) -> Obj:
        """A status write without admission that never decodes the stored status.

        Most of a run's size is its status, and it grows with every step: decoding it (and
        deep-copying the new one) would make every step of a long run cost more than the last.
        The returned object holds ``status`` itself (the caller's object, not a copy); the
        stored JSON and every watcher's copy are independent of it.
        """
        status_text = _json_text(status, "status")
        with self._txn() as txn:
            found = txn.status_row(kind, namespace, name)
            if found is None:
                raise _not_found(kind, name)
            oid, rest, stored_status, old_fields = found
            _check_preconditions(kind, meta, rest)
            if stored_status == status_text:
                return {**rest, "status": json.loads(stored_status)}
            new: Obj = {**rest, "metadata": dict(rest["metadata"]), "status": status}
            txn.replace_status(kind, oid, old_fields, new, status_text)
        self._committed(txn)
        return new

    async def patch_status(self, obj: Obj, base: Any) -> Obj:
        """Write ``obj.status``, storing and logging only how it differs from ``base``.

        ``base`` must be the status stored at ``obj``'s ``metadata.resourceVersion`` (the
        status of the object the caller read); the write is refused with Conflict otherwise,
        exactly as :meth:`update_status` would refuse a stale resourceVersion, so a stale
        ``base`` can never be patched into the wrong state. The merge patch is applied in
        SQL and the change log holds only the patch; watchers still receive the whole object
        (see :mod:`.patched`). Falls back to :meth:`update_status` when the difference is not
        a merge patch (a changed value holding ``null``), when there is no resourceVersion
        to check, or when status writes are admitted. Returns the object as written (its
        ``status`` is the caller's object, not a copy).
        """
        kind = self._kind_of(obj)
        meta = obj.get("metadata")
        status = obj.get("status")
        patch = mergepatch.diff(base if base is not None else {}, status)
        if (
            patch is None
            or not kind.status_subresource
            or not isinstance(meta, dict)
            or not str(meta.get("resourceVersion") or "").isdigit()
            or not isinstance(meta.get("name"), str)
            or (self.admission is not None and self.admit_status)
        ):
            return await self.update_status(obj)
        name = meta["name"]
        namespace = self._namespace(kind, meta.get("namespace"))
        if not patch:
            return {**obj, "status": status}
        patch_text = _json_text(patch, "status")
        with self._txn() as txn:
            found = txn.head_row(kind, namespace, name)
            if found is None:
                raise _not_found(kind, name)
            oid, rv, uid = found
            _check_preconditions(
                kind, meta, {"metadata": {"name": name, "uid": uid, "resourceVersion": str(rv)}}
            )
            old: Obj = {**obj, "status": base}
            new: Obj = {**obj, "metadata": dict(meta), "status": status}
            txn.patch_status(kind, oid, old, new, patch_text)
        self._committed(txn)
        return new

    # --------------------------------------------------------------- delete

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> None:
        ns = self._namespace(kind, namespace)
        with self._txn() as txn:
            found = txn.row(kind, ns, name)
            if found is None:
                raise _not_found(kind, name)
            oid, current = found
            gc.delete_object(txn, kind, oid, current, self._now())
        self._committed(txn)

    async def collect_garbage(self) -> int:
        """Delete objects none of whose owners exist; returns the number of object writes.

        Cascades on delete happen at once; this sweep catches dependents created
        after their owner was already gone (what the Kubernetes collector does
        periodically). Safe to call from any process at any time.
        """
        with self._txn() as txn:
            gc.collect_orphans(txn, self._now())
        self._committed(txn)
        return txn.writes

    # ---------------------------------------------------------------- watch

    def watch(
        self, kind: Kind, namespace: str | None = None, since: str | None = None
    ) -> AsyncIterator[WatchEvent]:
        """Events after ``since``; ``None`` means "from this call on", ``"0"`` means "any" (see .watch).

        A malformed ``since`` raises BadRequest here; Expired (410) is raised by the iterator.
        """
        self._ensure_open()
        parsed = parse_since(since)
        replay = parsed == 0
        if parsed is None:
            parsed = self._current_rv()
        return watch_events(self.feed, kind, namespace, parsed, replay=replay)
