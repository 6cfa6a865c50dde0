"""The manager: runs controllers over one Client, with shared watches and graceful stop.

``start()``:

1. lists every primary kind once (all namespaces) and queues every object's key in the
   controllers that own that kind;
2. opens one watch per kind (primary or secondary) from a bookmark taken *before* the
   lists (``client.resource_version()`` when the backend has it), so no change between
   list and watch is lost. Without a bookmark it derives the start from the lists: the
   store's resourceVersions are one global counter, so a kind whose list was empty
   watches from the highest version any list returned once the other lists are done (an
   empty kind listed before that point is listed again). Kinds only watched as
   secondaries are not listed: every primary is reconciled after the watches are open,
   and reads current state;
3. starts the workers, and a periodic resync (re-list + re-queue) when configured.

Runnables (:meth:`Manager.add_runnable`, long-lived work such as an engine's running step
attempts) are started before the controllers and stopped after them (``stop(drain=s)`` first
lets them finish their work for up to ``s`` seconds).

Kinds whose :meth:`Manager.cache` (or :meth:`Manager.projection`) was requested are listed
at start too (filling the caches) and their watch applies every event to the caches before
controllers see it. :meth:`Manager.listen` adds a callback that sees every event of a kind
right after the caches (a kind only listened to is watched, not listed).

A manager runs once (after ``stop()`` build a new one). ``stop(grace)`` stops taking new
keys, gives in-flight reconciles ``grace`` seconds and cancels the rest; watches are
closed; then the runnables are stopped. ``idle()`` resolves when every queue is empty, no
reconcile is in flight, no error back-off is pending and no watch event arrived for
``settle`` seconds (events of a status write travel through the store asynchronously;
the settle window lets them land). Keys scheduled by ``Result(requeue_after=...)`` are
future work and do not keep the manager busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from bobrapet.api.kinds import Kind
from bobrapet.runtime.cache import ObjectCache, Transform
from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.runtime.controller import Controller
from bobrapet.runtime.foreground import Foreground
from bobrapet.runtime.informer import GapHandler, Informer, Listener, bookmark, max_version, newer_version
from bobrapet.runtime.runnable import Drainable, Runnable
from bobrapet.store.client import Client, Resource

log = logging.getLogger("bobrapet.runtime.manager")

Condition = Callable[[], bool | Awaitable[bool]]


class Manager:
    """Holds controllers and runs them against ``client``."""

    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        resync_period: float | None = 600.0,
        settle: float = 0.1,
        grace: float = 10.0,
        foreground: Foreground | None = None,
    ) -> None:
        self.client = client
        #: Foreground work the controllers' reconciles yield to (``None``: they never wait).
        self.foreground = foreground
        self.clock: Clock = clock or RealClock()
        self.resync_period = resync_period
        self.settle = settle
        self.grace = grace
        self._controllers: dict[str, Controller] = {}
        self._runnables: dict[str, Runnable] = {}
        self._informers: dict[Kind, Informer] = {}
        self._caches: dict[tuple[Kind, str], ObjectCache] = {}
        self._listeners: dict[Kind, list[Listener]] = {}
        self._resync_task: asyncio.Task[None] | None = None
        self._started = False
        self._stopped = False
        self._activity = 0
        # Tasks waiting for the next change (run_until, idle): woken by _touch or by the
        # settle tick, one timer shared by every wait (none is armed while nobody waits).
        self._waiters: list[asyncio.Future[None]] = []
        self._tick: asyncio.TimerHandle | None = None

    # -- registry -----------------------------------------------------------------------------
    def add(self, controller: Controller) -> Controller:
        """Register ``controller`` (before :meth:`start`); it adopts the manager's clock."""
        if self._started:
            raise RuntimeError("controllers must be added before the manager starts")
        if controller.name in self._controllers:
            raise ValueError(f"a controller named {controller.name!r} is already registered")
        controller.use_clock(self.clock)
        controller.foreground = self.foreground
        controller.queue.add_listener(self._touch)
        self._controllers[controller.name] = controller
        return controller

    def add_runnable(self, runnable: Runnable) -> Runnable:
        """Register ``runnable`` (before :meth:`start`): started before the controllers,
        stopped after them (see :mod:`bobrapet.runtime.runnable`)."""
        if self._started:
            raise RuntimeError("runnables must be added before the manager starts")
        if runnable.name in self._runnables:
            raise ValueError(f"a runnable named {runnable.name!r} is already registered")
        self._runnables[runnable.name] = runnable
        return runnable

    def runnable(self, name: str) -> Runnable:
        return self._runnables[name]

    def cache(self, kind: Kind) -> ObjectCache:
        """The shared in-memory cache of ``kind`` (request it before :meth:`start`).

        Every cached kind is listed at start and watched for as long as the manager runs.
        """
        return self._cache(kind, "", None)

    def projection(self, kind: Kind, view: str, transform: Transform) -> ObjectCache:
        """A shared cache named ``view`` of ``kind`` holding only ``transform(obj)``.

        Request it before :meth:`start`; the first ``transform`` registered for a view wins.
        """
        if not view:
            raise ValueError("a projection needs a view name")
        return self._cache(kind, view, transform)

    def _cache(self, kind: Kind, view: str, transform: Transform | None) -> ObjectCache:
        cache = self._caches.get((kind, view))
        if cache is None:
            if self._started:
                raise RuntimeError(f"cache of {kind.plural} requested after the manager started")
            cache = self._caches[(kind, view)] = ObjectCache(kind, transform)
        return cache

    def listen(self, kind: Kind, listener: Listener) -> None:
        """Call ``listener(event)`` for every watch event of ``kind``, once the caches hold it
        (register before :meth:`start`; events lost to a ``410`` are not replayed)."""
        if self._started:
            raise RuntimeError("listeners must be added before the manager starts")
        self._listeners.setdefault(kind, []).append(listener)

    def _informer(self, kind: Kind) -> Informer:
        informer = self._informers.get(kind)
        if informer is None:
            informer = Informer(self.client, kind, on_gap=self._gap_handler(kind), on_activity=self._touch)
            self._informers[kind] = informer
        return informer

    def _caches_of(self, kind: Kind) -> list[ObjectCache]:
        return [cache for (cached, _), cache in self._caches.items() if cached == kind]

    @property
    def controllers(self) -> tuple[Controller, ...]:
        return tuple(self._controllers.values())

    def controller(self, name: str) -> Controller:
        return self._controllers[name]

    def informer(self, kind: Kind) -> Informer:
        """The shared watch of ``kind`` (exists once the manager started)."""
        return self._informers[kind]

    @property
    def started(self) -> bool:
        return self._started

    # -- activity tracking --------------------------------------------------------------------
    def _touch(self) -> None:
        self._activity += 1
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _on_tick(self) -> None:
        self._tick = None
        self._wake()

    def is_idle(self) -> bool:
        """Every queue empty, nothing in flight, no back-off pending, no event dispatching."""
        if any(informer.busy for informer in self._informers.values()):
            return False
        if any(informer.recovering for informer in self._informers.values()):
            return False
        return all(c.is_idle() for c in self._controllers.values())

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """List primaries, open watches, start workers (see the module docstring)."""
        if self._started:
            return
        if self._stopped:
            raise RuntimeError("a stopped manager cannot start again; create a new Manager")
        self._started = True
        for runnable in self._runnables.values():
            await runnable.start()
        by_primary: dict[Kind, list[Controller]] = {}
        for controller in self._controllers.values():
            by_primary.setdefault(controller.kind, []).append(controller)
            for watch in controller.all_watches():
                self._informer(watch.kind).subscribe(controller, watch)
        for (kind, _), cache in self._caches.items():
            self._informer(kind).caches.append(cache)
        for kind, listeners in self._listeners.items():
            self._informer(kind).listeners.extend(listeners)

        since = await self._initial_lists(by_primary)
        for kind, informer in self._informers.items():
            informer.start(since.get(kind, since.get(None)))
        for controller in self._controllers.values():
            controller.start()
        if self.resync_period:
            self._resync_task = asyncio.create_task(self._resync_loop(), name="manager-resync")
        self._touch()

    async def _list_into(self, kind: Kind, owners: list[Controller]) -> list[Resource]:
        objects = await self.client.list(kind)
        for controller in owners:
            controller.enqueue_objects(objects)
        for cache in self._caches_of(kind):
            cache.replace(objects)
        return objects

    async def _initial_lists(self, by_primary: dict[Kind, list[Controller]]) -> dict[Kind | None, str | None]:
        """List every primary and cached kind, queue keys, fill caches; return watch starts.

        The key ``None`` holds the start of kinds that are only watched as secondaries.
        """
        listed: dict[Kind, list[Controller]] = {kind: [] for kind, _ in self._caches}
        listed.update(by_primary)
        start = await bookmark(self.client)
        if start is not None:
            for kind, owners in listed.items():
                await self._list_into(kind, owners)
            return {None: start}
        # No bookmark: derive starts from the lists (resourceVersions are one counter).
        since: dict[Kind | None, str | None] = {}
        latest: str | None = None
        relist: list[Kind] = []
        for kind, owners in listed.items():
            own = max_version(await self._list_into(kind, owners))
            if own is None and latest is None:
                relist.append(kind)
            latest = newer_version(latest, own)
            since[kind] = latest
        for kind in relist:
            objects = await self._list_into(kind, listed[kind])
            since[kind] = newer_version(latest, max_version(objects))
        since[None] = latest
        return since

    async def stop(self, grace: float | None = None, *, drain: float = 0.0) -> None:
        """Graceful stop: no new keys, in-flight reconciles get ``grace`` s, then cancel.

        ``drain`` (seconds): once the controllers stopped, runnables that have a ``drain()``
        coroutine (see :mod:`.runnable`) get that long to finish their work before they stop.
        """
        if not self._started:
            return
        grace = self.grace if grace is None else grace
        if self._resync_task is not None:
            self._resync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resync_task
            self._resync_task = None
        await asyncio.gather(*(informer.stop() for informer in self._informers.values()))
        await asyncio.gather(*(c.stop(grace) for c in self._controllers.values()))
        if drain > 0:
            await self._drain(drain)
        await asyncio.gather(*(r.stop() for r in self._runnables.values()))
        self._informers.clear()
        self._started = False
        self._stopped = True

    async def _drain(self, timeout: float) -> None:
        draining = [r.drain() for r in self._runnables.values() if isinstance(r, Drainable)]
        if not draining:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(*draining)

    async def __aenter__(self) -> Manager:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- resync -------------------------------------------------------------------------------
    async def resync(self, controller: Controller | None = None) -> None:
        """Re-list and re-queue every primary of ``controller`` (or of all controllers)."""
        targets = [controller] if controller is not None else list(self._controllers.values())
        lists: dict[Kind, list[dict[str, object]]] = {}
        for target in targets:
            if target.kind not in lists:
                lists[target.kind] = await self.client.list(target.kind)
            target.enqueue_objects(lists[target.kind])

    def _gap_handler(self, kind: Kind) -> GapHandler:
        async def on_gap(controller: Controller | None) -> None:
            if controller is not None:
                await self._guarded_resync([controller])
                return
            # A watch of ``kind`` lost events: refill its cache, then every controller that
            # watches it re-lists its primaries.
            caches = self._caches_of(kind)
            if caches:
                try:
                    objects = await self.client.list(kind)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.error("re-listing %s failed: %s", kind.plural, exc, exc_info=exc)
                else:
                    for cache in caches:
                        cache.replace(objects)
            dependents = [
                c for c in self._controllers.values() if any(w.kind == kind for w in c.all_watches())
            ]
            await self._guarded_resync(dependents)

        return on_gap

    async def _guarded_resync(self, controllers: list[Controller]) -> None:
        for controller in controllers:
            try:
                await self.resync(controller)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("re-listing %s failed: %s", controller.kind.plural, exc, exc_info=exc)

    async def _resync_loop(self) -> None:
        assert self.resync_period is not None
        while True:
            await self.clock.sleep(self.resync_period)
            await self._guarded_resync(list(self._controllers.values()))

    # -- waiting ------------------------------------------------------------------------------
    async def _wait_changed(self) -> None:
        """Until the next change of queue or watch state, at most ``settle`` seconds.

        Changes before the call are not seen. Waits end early at the shared settle tick
        (armed by the first wait after the previous tick), never later than ``settle``
        seconds after they began: no timer is created per wait.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if self._tick is None:
            self._tick = loop.call_later(self.settle, self._on_tick)
        await waiter

    async def idle(self) -> None:
        """Resolve once the manager is idle and stayed so for ``settle`` seconds."""
        if not self._started:
            raise RuntimeError("the manager is not running")
        while True:
            while not self.is_idle():
                await self._wait_changed()
            mark = self._activity
            await asyncio.sleep(self.settle)
            if self._activity == mark and self.is_idle():
                return

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """:meth:`idle` bounded by ``timeout`` seconds; returns whether idleness was reached."""
        try:
            async with asyncio.timeout(timeout):
                await self.idle()
        except TimeoutError:
            return False
        return True

    async def run_until(self, predicate: Condition, timeout: float | None = None) -> bool:
        """Keep reconciling until ``predicate()`` (sync or async) holds.

        The predicate is checked now and after every change of queue or watch state (and
        at least every ``settle`` seconds). Returns ``True`` when it held, ``False`` when
        ``timeout`` seconds passed first.
        """
        if not self._started:
            raise RuntimeError("the manager is not running")

        async def check() -> bool:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            return bool(value)

        async def loop() -> None:
            while not await check():
                await self._wait_changed()

        try:
            async with asyncio.timeout(timeout):
                await loop()
        except TimeoutError:
            return False
        return True
