"""Watching the change log, across processes.

Every committed write appends rows to ``events`` (see :mod:`.writer`). A watch
polls that table every ``poll_interval`` seconds, so changes committed by
another process on the same file are seen within one interval; writes made by
any client of the same file *in this process* wake watchers at once through
the module-level :class:`Notifier` registry.

Invariants:

* events are delivered in resourceVersion order, each exactly once, only for
  the watched kind (and namespace, when given);
* ``since=None`` starts after the resourceVersion current when
  ``client.watch()`` is called (not when iteration starts); ``since="0"``
  means "any" (Kubernetes): while the change log is complete (nothing pruned
  yet) it replays the whole history, otherwise it first replays the current
  objects as synthetic ``ADDED`` events; both are gap-free from an empty
  state. Any other value resumes strictly after it;
* if events the watcher still needs were pruned, it raises a ``StatusError``
  with reason ``Expired`` (code 410) instead of silently skipping them — the
  caller must re-list. A ``since`` newer than the store's resourceVersion (a
  bookmark from a replaced state file) is ``Expired`` too;
* ``PATCHED`` rows (status merge patches) are delivered as ``MODIFIED`` with the whole
  object (see :mod:`.patched`);
* SQLite failures end the stream with a ``StatusError`` (see :mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from bobrapet.api.errors import BadRequest, StatusError
from bobrapet.api.kinds import Kind
from bobrapet.store.client import EventType, WatchEvent
from bobrapet.store.sqlite.errors import store_error
from bobrapet.store.sqlite.patched import PatchedObjects
from bobrapet.store.sqlite.writer import PATCHED

BATCH = 512


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)
    #: Kinds written in this process since the watcher last looked; ``None`` = "anything".
    kinds: set[str] | None = field(default_factory=set)

    def wake(self, kinds: frozenset[str] | None) -> None:
        if kinds is None or self.kinds is None:
            self.kinds = None
        else:
            self.kinds |= kinds
        self.event.set()

    def relevant(self, kind_key: str) -> bool:
        return self.kinds is None or kind_key in self.kinds

    def reset(self) -> None:
        self.event.clear()
        self.kinds = set()


class Notifier:
    """In-process wake-ups for watchers of one database file, keyed by its path."""

    _lock = threading.Lock()
    _waiters: dict[str, set[_Waiter]] = {}

    @classmethod
    def subscribe(cls, key: str) -> _Waiter:
        waiter = _Waiter(asyncio.get_running_loop())
        with cls._lock:
            cls._waiters.setdefault(key, set()).add(waiter)
        return waiter

    @classmethod
    def unsubscribe(cls, key: str, waiter: _Waiter) -> None:
        with cls._lock:
            waiters = cls._waiters.get(key)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del cls._waiters[key]

    @classmethod
    def notify(cls, key: str, kinds: set[str] | None = None) -> None:
        """Wake watchers of ``key``; ``kinds`` (written kinds) lets watchers of others sleep on."""
        written = frozenset(kinds) if kinds is not None else None
        with cls._lock:
            waiters = list(cls._waiters.get(key, ()))
        if not waiters:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for waiter in waiters:
            if waiter.loop is current:
                waiter.wake(written)
            elif not waiter.loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    waiter.loop.call_soon_threadsafe(waiter.wake, written)


def expired(since: int, compacted: int) -> StatusError:
    return StatusError(
        message=f"too old resource version: {since} ({compacted}); re-list and watch again",
        reason="Expired",
        code=410,
    )


def parse_since(since: str | None) -> int | None:
    if since is None or since == "":
        return None
    try:
        value = int(since)
    except ValueError:
        value = -1
    if value < 0:
        raise BadRequest(f"invalid resourceVersion {since!r} for watch: must be a non-negative integer")
    return value


def _meta(conn: sqlite3.Connection, key: str) -> int:
    return int(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


async def watch_events(
    conn: sqlite3.Connection,
    key: str,
    kind: Kind,
    namespace: str | None,
    start: int,
    *,
    replay: bool,
    poll_interval: float,
    is_closed: Callable[[], bool],
) -> AsyncIterator[WatchEvent]:
    """Yield events for ``kind``/``namespace`` after resourceVersion ``start`` until the client closes.

    With ``replay`` (``since="0"``) and a pruned change log, the current objects come first
    as ``ADDED``; with a complete log the history after 0 is replayed instead.
    """
    kind_key = kind.qualified_plural
    ns_filter = namespace if kind.namespaced and namespace else None
    waiter = Notifier.subscribe(key)
    try:
        if is_closed():
            return
        if replay and _meta(conn, "compacted") > 0:
            conn.execute("BEGIN")
            try:
                last = _meta(conn, "rv")
                sql = "SELECT data FROM objects WHERE kind = ?"
                args: tuple[str, ...] = (kind_key,)
                if ns_filter is not None:
                    sql += " AND namespace = ?"
                    args += (ns_filter,)
                snapshot = conn.execute(sql + " ORDER BY rv", args).fetchall()
            finally:
                conn.execute("COMMIT")
            for (data,) in snapshot:
                yield WatchEvent("ADDED", json.loads(data))
        else:
            last = start
            compacted = _meta(conn, "compacted")
            if last < compacted:
                raise expired(last, compacted)
            current = _meta(conn, "rv")
            if last > current:
                raise StatusError(
                    message=f"resource version {last} is newer than the store's ({current}): the "
                    "state file was replaced; re-list and watch again",
                    reason="Expired",
                    code=410,
                )
        sql = "SELECT rv, type, data FROM events WHERE rv > ? AND rv <= ? AND kind = ?"
        if ns_filter is not None:
            sql += " AND namespace = ?"
        sql += f" ORDER BY rv LIMIT {BATCH}"
        loop = asyncio.get_running_loop()
        patched = PatchedObjects(conn, kind_key)
        while not is_closed():
            waiter.reset()
            high = _meta(conn, "rv")
            rows: list[tuple[int, str, str]] = []
            if high > last:
                params: tuple[object, ...] = (last, high, kind_key)
                if ns_filter is not None:
                    params += (ns_filter,)
                rows = conn.execute(sql, params).fetchall()
                compacted = _meta(conn, "compacted")
                if last < compacted:
                    raise expired(last, compacted)
                last = rows[-1][0] if len(rows) == BATCH else high
            for rv, type_, data in rows:
                if type_ == PATCHED:
                    patched_obj = patched.resolve(rv, data)
                    if patched_obj is not None:
                        yield WatchEvent("MODIFIED", patched_obj)
                    if is_closed():
                        return
                    continue
                event_type: EventType = (
                    "DELETED" if type_ == "DELETED" else ("ADDED" if type_ == "ADDED" else "MODIFIED")
                )
                obj = json.loads(data)
                patched.seen(obj, deleted=event_type == "DELETED")
                yield WatchEvent(event_type, obj)
                if is_closed():
                    return
            if len(rows) == BATCH:
                continue
            # Sleep until this kind is written in-process, or the poll interval passes (writes
            # of other processes are only seen by polling); other kinds' writes do not wake us.
            deadline = loop.time() + poll_interval
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(deadline):
                    while True:
                        await waiter.event.wait()
                        if waiter.relevant(kind_key) or is_closed():
                            break
                        waiter.event.clear()
    except sqlite3.Error as exc:
        raise store_error(key, exc) from exc
    finally:
        Notifier.unsubscribe(key, waiter)
