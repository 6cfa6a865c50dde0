"""Watching the change log, across processes.

Every committed write appends rows to ``events`` (see :mod:`.writer`). Each client has
one :class:`ChangeFeed`: a single reader of that table for all of the client's watches,
whatever their kinds (one query per wake-up, not one per watched kind). It polls every
``poll_interval`` seconds, so changes committed by another process on the same file are
seen within one interval; writes made by any client of the same file *in this process*
wake it at once through the module-level :class:`Notifier` registry. A watch first reads
the events between its ``since`` and the feed's position itself, then joins the feed,
which hands it every later event of its kind (and namespace). The feed runs only while
some watch has joined it.

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
from typing import Any

from bobrapet.api.errors import BadRequest, StatusError
from bobrapet.api.kinds import Kind
from bobrapet.store.client import EventType, WatchEvent
from bobrapet.store.sqlite.errors import store_error
from bobrapet.store.sqlite.patched import PatchedObjects
from bobrapet.store.sqlite.schema import CURRENT_RV, current_rv
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


Row = tuple[int, str, str]  # (rv, type, data)


def _rv_of(row: tuple[int, str, str, str, str]) -> int:
    return row[0]


@dataclass(eq=False)
class _Subscriber:
    """One watch that has joined its client's feed."""

    kind_key: str
    namespace: str | None
    #: Highest resourceVersion handed to (or read by) this watch.
    last: int
    rows: list[Row] = field(default_factory=list)
    error: BaseException | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, kind_key: str, namespace: str) -> bool:
        return kind_key == self.kind_key and (self.namespace is None or namespace == self.namespace)

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.ready.set()


class ChangeFeed:
    """The one change-log reader of a client: reads new events of every kind once, fans them out.

    Invariants: ``position`` only grows; every joined subscriber has ``last <= position``
    when it joins and receives exactly the events with ``rv > last`` of its kind and
    namespace, in resourceVersion order; a feed failure (SQLite error, pruned events)
    fails every joined subscriber, never skips silently.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        key: str,
        *,
        poll_interval: float,
        is_closed: Callable[[], bool],
    ) -> None:
        self.conn = conn
        self.key = key
        self.poll_interval = poll_interval
        self.is_closed = is_closed
        self.position = 0
        self.reads = 0
        self._subscribers: set[_Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._waiter: _Waiter | None = None

    @property
    def running(self) -> bool:
        """The reader task is alive (some watch has joined)."""
        return self._task is not None and not self._task.done()

    def horizon(self) -> int:
        """The resourceVersion up to which a joining watch must read the log itself."""
        if self._task is None or self._task.done():
            self.position = max(self.position, current_rv(self.conn))
        return self.position

    def join(self, subscriber: _Subscriber) -> None:
        """Hand ``subscriber`` every event after ``subscriber.last`` (``<= horizon()``)."""
        loop = asyncio.get_running_loop()
        if self._task is not None and (self._task.done() or self._task.get_loop() is not loop):
            # the reader belonged to an event loop that is gone (a client moved to a new loop)
            for stale in self._subscribers:
                stale.fail(
                    StatusError("the watch's event loop ended; watch again", "ServiceUnavailable", 503)
                )
            self._subscribers.clear()
            self._task = None
        self._subscribers.add(subscriber)
        if self._task is None:
            self._task = loop.create_task(self._run(), name=f"change-feed {self.key}")
        elif self._waiter is not None:
            self._waiter.wake(None)  # look again: writes of the new kind may have been ignored

    def leave(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)

    async def _run(self) -> None:
        waiter = self._waiter = Notifier.subscribe(self.key)
        loop = asyncio.get_running_loop()
        try:
            while self._subscribers:
                if self.is_closed():
                    for subscriber in self._subscribers:
                        subscriber.ready.set()
                    return
                waiter.reset()
                rows, high, compacted = self._read()
                if high > self.position:
                    self.reads += 1
                    if self.position < compacted:
                        error = expired(self.position, compacted)
                        for subscriber in self._subscribers:
                            subscriber.fail(error)
                        self._subscribers.clear()
                        self.position = high
                        return
                    self._fan_out(rows)
                    self.position = rows[-1][0] if len(rows) == BATCH else high
                if len(rows) == BATCH:
                    await asyncio.sleep(0)  # let the watchers drain what they got
                    continue
                # Sleep until a watched kind is written in-process, or the poll interval
                # passes (writes of other processes are only seen by polling): the timer
                # wakes the waiter as for a write of any kind (cheaper than asyncio.timeout).
                timer = loop.call_at(loop.time() + self.poll_interval, waiter.wake, None)
                try:
                    while True:
                        await waiter.event.wait()
                        if self.is_closed() or self._relevant(waiter):
                            break
                        waiter.event.clear()
                finally:
                    timer.cancel()
        except sqlite3.Error as exc:
            error = store_error(self.key, exc)
            for subscriber in self._subscribers:
                subscriber.fail(error)
            self._subscribers.clear()
        finally:
            if self._task is asyncio.current_task():
                self._task = self._waiter = None
            Notifier.unsubscribe(self.key, waiter)

    def _read(self) -> tuple[list[tuple[int, str, str, str, str]], int, int]:
        """``(rows after position, last resourceVersion, compacted)``, all from one snapshot.

        One statement is one read transaction: the rows are exactly the watched kinds' events
        in ``(position, high]`` (up to ``BATCH``), and ``compacted`` says whether any of them
        had been pruned. Only the watched kinds' rows are read (their data is most of the cost).
        """
        kinds = sorted({subscriber.kind_key for subscriber in self._subscribers})
        found = self.conn.execute(
            "SELECT * FROM (SELECT rv, kind, namespace, type, data FROM events WHERE rv > ? "
            f"AND kind IN ({','.join('?' * len(kinds))}) ORDER BY rv LIMIT ?) "
            f"UNION ALL SELECT ({CURRENT_RV}), NULL, NULL, NULL, "
            "(SELECT value FROM meta WHERE key = 'compacted')",
            (self.position, *kinds, BATCH),
        ).fetchall()
        rows: list[tuple[int, str, str, str, str]] = []
        high = compacted = 0
        for row in found:
            if row[3] is None:
                high, compacted = int(row[0]), int(row[4])
            else:
                rows.append(row)
        rows.sort(key=_rv_of)
        return rows, high, compacted

    def _relevant(self, waiter: _Waiter) -> bool:
        return waiter.kinds is None or any(s.kind_key in waiter.kinds for s in self._subscribers)

    def _fan_out(self, rows: list[tuple[int, str, str, str, str]]) -> None:
        subscribers = self._subscribers
        for rv, kind_key, namespace, type_, data in rows:
            for subscriber in subscribers:
                if rv > subscriber.last and subscriber.wants(kind_key, namespace):
                    subscriber.rows.append((rv, type_, data))
                    subscriber.last = rv
                    subscriber.ready.set()


def _event(type_: str, data: str) -> WatchEvent:
    event_type: EventType = "DELETED" if type_ == "DELETED" else ("ADDED" if type_ == "ADDED" else "MODIFIED")
    return WatchEvent(event_type, json.loads(data))


def _deliver(patched: PatchedObjects, rv: int, type_: str, data: str) -> WatchEvent | None:
    """The event of one change-log row; a ``PATCHED`` row becomes ``MODIFIED`` with the whole
    object (``None``: its base is unknown and a later event of the object follows)."""
    if type_ == PATCHED:
        obj = patched.resolve(rv, data)
        return None if obj is None else WatchEvent("MODIFIED", obj)
    event = _event(type_, data)
    patched.seen(event.object, deleted=event.type == "DELETED")
    return event


async def watch_events(
    feed: ChangeFeed,
    kind: Kind,
    namespace: str | None,
    start: int,
    *,
    replay: bool,
) -> AsyncIterator[WatchEvent]:
    """Yield events for ``kind``/``namespace`` after resourceVersion ``start`` until the client closes.

    With ``replay`` (``since="0"``) and a pruned change log, the current objects come first
    as ``ADDED``; with a complete log the history after 0 is replayed instead.
    """
    conn = feed.conn
    is_closed = feed.is_closed
    kind_key = kind.qualified_plural
    ns_filter = namespace if kind.namespaced and namespace else None
    subscriber: _Subscriber | None = None
    patched = PatchedObjects(conn, kind_key)
    try:
        if is_closed():
            return
        if replay and _meta(conn, "compacted") > 0:
            conn.execute("BEGIN")
            try:
                last = current_rv(conn)
                sql = "SELECT data FROM objects WHERE kind = ?"
                args: tuple[str, ...] = (kind_key,)
                if ns_filter is not None:
                    sql += " AND namespace = ?"
                    args += (ns_filter,)
                snapshot = conn.execute(sql + " ORDER BY rv", args).fetchall()
            finally:
                conn.execute("COMMIT")
            for (data,) in snapshot:
                added = WatchEvent("ADDED", json.loads(data))
                patched.seen(added.object)
                yield added
        else:
            last = start
            compacted = _meta(conn, "compacted")
            if last < compacted:
                raise expired(last, compacted)
            current = current_rv(conn)
            if last > current:
                raise StatusError(
                    message=f"resource version {last} is newer than the store's ({current}): the "
                    "state file was replaced; re-list and watch again",
                    reason="Expired",
                    code=410,
                )
        # Catch up on our own up to the feed's position, then join it. Reading the last batch
        # and joining happen without an await in between, so no event is missed or repeated.
        sql = "SELECT rv, type, data FROM events WHERE rv > ? AND rv <= ? AND kind = ?"
        if ns_filter is not None:
            sql += " AND namespace = ?"
        sql += f" ORDER BY rv LIMIT {BATCH}"
        while subscriber is None:
            if is_closed():
                return
            high = feed.horizon()
            rows: list[Row] = []
            if high > last:
                params: tuple[Any, ...] = (last, high, kind_key)
                if ns_filter is not None:
                    params += (ns_filter,)
                rows = conn.execute(sql, params).fetchall()
                compacted = _meta(conn, "compacted")
                if last < compacted:
                    raise expired(last, compacted)
            if len(rows) == BATCH:
                last = rows[-1][0]
            else:
                last = max(last, high)
                subscriber = _Subscriber(kind_key, ns_filter, last)
                feed.join(subscriber)
            for rv, type_, data in rows:
                if (event := _deliver(patched, rv, type_, data)) is not None:
                    yield event
                if is_closed():
                    return
        while not is_closed():
            if not subscriber.rows:
                if subscriber.error is not None:
                    raise subscriber.error
                subscriber.ready.clear()
                await subscriber.ready.wait()
                continue
            pending, subscriber.rows = subscriber.rows, []
            for rv, type_, data in pending:
                if (event := _deliver(patched, rv, type_, data)) is not None:
                    yield event
                if is_closed():
                    return
    except sqlite3.Error as exc:
        raise store_error(feed.key, exc) from exc
    finally:
        if subscriber is not None:
            feed.leave(subscriber)
