"""A controller: one primary kind, a work queue of its keys and N workers.

Workers take a :class:`~.request.Request` from the queue and call the reconciler
(``async def reconcile(request) -> Result``). Outcome handling follows controller-runtime:

* exception → logged, key re-queued through the rate limiter (exponential back-off);
* ``Result(requeue_after=s)`` → back-off forgotten, key queued again after ``s`` seconds
  (at least :data:`MIN_REQUEUE_DELAY`, reference §9.1: no hot requeue loops);
* ``Result(requeue=True)`` → key re-queued through the rate limiter;
* otherwise → back-off forgotten (done).

The queue guarantees one key is never reconciled by two workers at once. Event sources
are declared as :class:`~.watches.Watch` entries; the :class:`~.manager.Manager` feeds
them (the primary kind always maps to the object's own key, filtered by
``primary_predicate`` when given — e.g. to ignore the controller's own status writes).
:meth:`stop` is graceful: no new key is taken, in-flight reconciles get ``grace`` seconds, then are cancelled.
When metrics are on (:mod:`.metrics`), every reconcile is counted by result and timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

from bobrapet.api.errors import StatusError
from bobrapet.api.kinds import Kind
from bobrapet.runtime import metrics
from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.runtime.foreground import Foreground
from bobrapet.runtime.queue import QueueShutDown, WorkQueue
from bobrapet.runtime.ratelimit import ExponentialBackoff
from bobrapet.runtime.request import Request, Result
from bobrapet.runtime.watches import Predicate, Watch, enqueue_object
from bobrapet.store.client import Resource, WatchEvent

Reconciler = Callable[[Request], Awaitable[Result | None]]

log = logging.getLogger("bobrapet.runtime.controller")

MIN_REQUEUE_DELAY = 0.01  # seconds; "the minimum requeue delay anywhere is 10ms"


class Controller:
    """Reconciles objects of ``kind`` with ``workers`` concurrent workers.

    ``base_delay``/``max_delay`` configure the per-key exponential back-off of failed
    reconciles; ``reconcile_timeout`` (seconds, ``None`` = unbounded) cancels a reconcile
    that runs too long and treats it as a failure.
    """

    def __init__(
        self,
        name: str,
        kind: Kind,
        reconciler: Reconciler,
        *,
        workers: int = 1,
        watches: Sequence[Watch] = (),
        primary_predicate: Predicate | None = None,
        base_delay: float = 0.005,
        max_delay: float = 1000.0,
        reconcile_timeout: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.kind = kind
        self.reconciler = reconciler
        self.workers = workers
        self.watches: tuple[Watch, ...] = tuple(watches)
        self.primary_predicate = primary_predicate
        self.reconcile_timeout = reconcile_timeout
        #: Set by the manager: reconciles take turns with foreground work (see :mod:`.foreground`).
        self.foreground: Foreground | None = None
        self._clock_given = clock is not None
        self.queue: WorkQueue[Request] = WorkQueue(
            clock=clock or RealClock(),
            rate_limiter=ExponentialBackoff(base_delay, max_delay),
            name=name,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._in_flight = 0
        self.reconciles = 0
        self.errors = 0

    # -- wiring -------------------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self.queue.clock

    def use_clock(self, clock: Clock) -> None:
        """Adopt the manager's clock unless one was given explicitly (before start)."""
        if self._tasks:
            raise RuntimeError(f"controller {self.name} already started")
        if not self._clock_given:
            self.queue.clock = clock

    @property
    def primary_watch(self) -> Watch:
        return Watch(self.kind, enqueue_object, self.primary_predicate)

    def all_watches(self) -> tuple[Watch, ...]:
        """The primary watch followed by the declared secondary ones."""
        return (self.primary_watch, *self.watches)

    def enqueue(self, request: Request) -> None:
        self.queue.add(request)

    def enqueue_objects(self, objects: Iterable[Resource]) -> None:
        for obj in objects:
            self.queue.add(Request.for_object(obj))

    async def dispatch(self, watch: Watch, event: WatchEvent) -> None:
        """Run ``watch``'s predicate and mapper on ``event`` and enqueue the result."""
        pending = self.offer(watch, event)
        if pending is not None:
            await pending

    def offer(self, watch: Watch, event: WatchEvent) -> Awaitable[None] | None:
        """:meth:`dispatch` without a coroutine when the mapper is synchronous (the common
        case): the requests are queued now and ``None`` returned; an ``async`` mapper's
        result is returned as an awaitable that queues them when awaited."""
        if watch.predicate is not None and not watch.predicate(event):
            return None
        mapped = watch.mapper(event)
        if type(mapped) is not list and inspect.isawaitable(mapped):
            return self._enqueue_later(watch, mapped)
        self._enqueue_mapped(watch, mapped)
        return None

    async def _enqueue_later(self, watch: Watch, mapped: Awaitable[Iterable[Request]]) -> None:
        self._enqueue_mapped(watch, await mapped)

    def _enqueue_mapped(self, watch: Watch, mapped: Iterable[Request]) -> None:
        for request in mapped:
            delay = watch.delay(request)
            if delay > 0:
                self.queue.add_debounced(request, delay)
            else:
                self.queue.add(request)

    # -- state --------------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        """Reconciles running right now."""
        return self._in_flight

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._stopping

    def is_idle(self) -> bool:
        """Nothing queued, nothing reconciling, no error back-off pending."""
        return self._in_flight == 0 and self.queue.is_idle()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the workers (idempotent)."""
        if self._tasks:
            return
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self.workers)
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking keys; wait up to ``grace`` s for in-flight reconciles, then cancel."""
        self._stopping = True
        self.queue.shut_down()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, grace))
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _worker(self) -> None:
        while True:
            try:
                request = await self.queue.get()
            except QueueShutDown:
                return
            if self._stopping:
                self.queue.done(request)
                continue
            # Reconcilers are level-triggered: this pass sees everything a pending timer of
            # the key would, and its result asks again for the delays still needed.
            self.queue.cancel_timers(request)
            self._in_flight += 1
            try:
                if self.foreground is None:
                    await self._process(request)
                else:
                    async with self.foreground.background():
                        await self._process(request)
            finally:
                self._in_flight -= 1
                self.queue.done(request)

    async def _process(self, request: Request) -> None:
        self.reconciles += 1
        recorder = metrics.current()
        started = time.perf_counter() if recorder is not None else 0.0
        try:
            if self.reconcile_timeout is None:
                result = await self.reconciler(request)
            else:
                async with asyncio.timeout(self.reconcile_timeout):
                    result = await self.reconciler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors += 1
            self._log_failure(request, exc)
            self.queue.add_rate_limited(request)
            if recorder is not None:
                recorder.reconciled(self.name, "error", time.perf_counter() - started)
            return
        result = result or Result()
        if result.requeue_after is not None and result.requeue_after > 0:
            self.queue.forget(request)
            self.queue.add_after(request, max(result.requeue_after, MIN_REQUEUE_DELAY))
            outcome = "requeue_after"
        elif result.requeue:
            self.queue.add_rate_limited(request)
            outcome = "requeue"
        else:
            self.queue.forget(request)
            outcome = "success"
        if recorder is not None:
            recorder.reconciled(self.name, outcome, time.perf_counter() - started)

    def _log_failure(self, request: Request, exc: BaseException) -> None:
        attempts = self.queue.num_requeues(request)
        if isinstance(exc, StatusError) and exc.reason == "Conflict":
            log.debug("%s %s: conflict, retrying: %s", self.name, request, exc)
        elif isinstance(exc, TimeoutError):
            log.warning(
                "%s %s: reconcile exceeded %ss (attempt %d)",
                self.name, request, self.reconcile_timeout, attempts + 1,
            )  # fmt: skip
        else:
            log.error(
                "%s %s: reconcile failed (attempt %d): %s",
                self.name, request, attempts + 1, exc, exc_info=exc,
            )  # fmt: skip
