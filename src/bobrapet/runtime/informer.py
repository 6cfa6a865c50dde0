"""One shared watch stream per kind, fanned out to every controller that watches it.

An :class:`Informer` keeps a ``client.watch(kind, since=...)`` stream open for as long as it
runs, applies each event to the kind's caches (:class:`~.cache.ObjectCache`, full or projections) and
then hands it to its listeners (plain callbacks, :meth:`~.manager.Manager.listen`) and to its
subscribers (``(controller, watch)`` pairs), in that order.

* It resumes from the highest ``metadata.resourceVersion`` it has seen when a stream ends
  or fails (transient errors are retried with capped exponential back-off).
* A ``410`` (the store compacted the events after ``since``) means events may have been
  missed: it re-opens the stream from the store's current bookmark (or "from now") and
  then calls ``on_gap`` so the manager re-lists and re-queues everything that depends on
  this kind (level-triggered recovery).
* A failing mapper never stops the stream: the error is logged and ``on_gap`` is called
  for that controller only. A failing listener is logged and skipped.
* Listeners see exactly the events the stream delivers: after a ``410`` the caches are
  re-listed, but the events lost in the gap (deletions included) are not replayed to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import Kind
from bobrapet.runtime.cache import ObjectCache
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.watches import Watch
from bobrapet.store.client import Client, Resource, WatchEvent

log = logging.getLogger("bobrapet.runtime.informer")

GapHandler = Callable[[Controller | None], Coroutine[Any, Any, None]]
#: Called with every event of a kind once the caches hold it (synchronously: keep it short).
Listener = Callable[[WatchEvent], None]


def resource_version(obj: Resource) -> str | None:
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    return str(rv) if rv not in (None, "") else None


def newer_version(a: str | None, b: str | None) -> str | None:
    """The later of two resourceVersions (numeric when both are digits)."""
    if a is None:
        return b
    if b is None:
        return a
    if a.isdigit() and b.isdigit():
        return a if int(a) >= int(b) else b
    return b


async def bookmark(client: Client) -> str | None:
    """The store's current resourceVersion, when the backend exposes one.

    The Client protocol does not require it; the SQLite store offers
    ``resource_version()``. Watching from a bookmark taken *before* a list is gap-free.
    """
    method = getattr(client, "resource_version", None)
    if method is None:
        return None
    value = await method()
    return str(value) if value not in (None, "") else None


def max_version(objects: list[Resource]) -> str | None:
    best: str | None = None
    for obj in objects:
        best = newer_version(best, resource_version(obj))
    return best


@dataclass
class Informer:
    client: Client
    kind: Kind
    on_gap: GapHandler
    on_activity: Callable[[], None] = lambda: None
    subscribers: list[tuple[Controller, Watch]] = field(default_factory=list)
    caches: list[ObjectCache] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    since: str | None = None
    retry_base: float = 0.05
    retry_max: float = 5.0
    events: int = 0
    expirations: int = 0
    busy: bool = False
    _task: asyncio.Task[None] | None = None
    _gaps: set[asyncio.Task[None]] = field(default_factory=set)

    def subscribe(self, controller: Controller, watch: Watch) -> None:
        self.subscribers.append((controller, watch))

    def start(self, since: str | None) -> None:
        self.since = since
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.kind.plural}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for gap in list(self._gaps):
            gap.cancel()
        await asyncio.gather(*self._gaps, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                async for event in self.client.watch(self.kind, since=self.since):
                    failures = 0
                    self.since = newer_version(self.since, resource_version(event.object))
                    await self._dispatch(event)
            except asyncio.CancelledError:
                raise
            except StatusError as exc:
                if exc.code == 410 or exc.reason in ("Expired", "Gone"):
                    log.info("watch of %s expired (%s); re-listing", self.kind.plural, exc)
                    self.expirations += 1
                    try:
                        self.since = await bookmark(self.client)
                    except StatusError:
                        self.since = None
                    asyncio.get_running_loop().call_soon(self._gap_soon)
                    continue
                failures += 1
                log.warning("watch of %s failed: %s", self.kind.plural, exc)
            except Exception as exc:
                failures += 1
                log.warning("watch of %s failed: %s", self.kind.plural, exc, exc_info=exc)
            await asyncio.sleep(min(self.retry_max, self.retry_base * 2 ** min(failures, 16)))

    def _gap_soon(self) -> None:
        task = asyncio.create_task(self.on_gap(None))
        self._gaps.add(task)
        task.add_done_callback(self._gap_done)

    def _gap_done(self, task: asyncio.Task[None]) -> None:
        self._gaps.discard(task)
        self.on_activity()

    @property
    def recovering(self) -> bool:
        """A re-list after lost events is still running."""
        return bool(self._gaps)

    async def _dispatch(self, event: WatchEvent) -> None:
        self.events += 1
        self.busy = True
        self.on_activity()
        for cache in self.caches:
            cache.apply(event)
        for listener in self.listeners:
            try:
                listener(event)
            except Exception as exc:
                log.error("a listener of %s events failed: %s", self.kind.plural, exc, exc_info=exc)
        try:
            for controller, watch in self.subscribers:
                try:
                    pending = controller.offer(watch, event)
                    if pending is not None:
                        await pending
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.error(
                        "%s: mapping a %s event failed: %s; re-listing",
                        controller.name, self.kind.plural, exc, exc_info=exc,
                    )  # fmt: skip
                    await self.on_gap(controller)
        finally:
            self.busy = False
            self.on_activity()
