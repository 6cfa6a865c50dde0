"""A rate-limited, delaying work queue for asyncio (client-go ``workqueue`` semantics).

Keys flow ``add`` → queued → ``get`` (processing) → ``done``. Invariants:

* **no double processing** — a key handed out by :meth:`WorkQueue.get` is not handed out
  again before :meth:`WorkQueue.done` is called for it; a key added while it is processing
  is marked *dirty* and queued again by ``done``;
* **duplicates collapse** — adding a key that is already queued does nothing;
* **FIFO** — keys are handed out in the order they became ready;
* **earliest deadline wins** — ``add_after`` for a key already waiting only moves its
  deadline earlier, never later;
* **superseded timers** — :meth:`WorkQueue.cancel_timers` drops a key's pending delayed adds
  (a level-triggered reconciler calls it when it starts on the key: that reconcile sees the
  current state and asks again for the delays it still needs);
* **rate limiting** — ``add_rate_limited`` waits ``rate_limiter.when(key)`` (exponential
  per-key back-off by default); ``forget`` resets the key's back-off;
* **shutdown** — after :meth:`shut_down` new adds are ignored, pending delays are dropped,
  ``get`` still hands out keys that were already queued and raises :class:`QueueShutDown`
  once none are left; :meth:`shut_down_with_drain` additionally waits until every key
  handed out has been marked done.

All methods except ``get`` and ``shut_down_with_drain`` are synchronous and must be called
from the event loop's thread. Time comes from an injectable :class:`~.clock.Clock`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bobrapet.runtime.clock import Clock, RealClock, TimerHandle
from bobrapet.runtime.ratelimit import ExponentialBackoff, RateLimiter

K = TypeVar("K", bound=Hashable)


class QueueShutDown(Exception):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and empty."""


@dataclass
class _Waiting:
    deadline: float
    handle: TimerHandle
    # An error back-off (add_rate_limited) or a debounced event (add_debounced): work that is
    # already due in substance, so it keeps the queue busy; a planned requeue does not.
    retry: bool
    # Scheduled by add_debounced: an add() now makes it pointless (the reconcile will see
    # everything the debounced one would have seen), so add() cancels it.
    debounced: bool = False


class WorkQueue(Generic[K]):
    """See the module docstring for the invariants."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rate_limiter: RateLimiter[K] | None = None,
        name: str = "",
    ) -> None:
        self.name = name
        self.clock: Clock = clock or RealClock()
        self.rate_limiter: RateLimiter[K] = rate_limiter or ExponentialBackoff()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._waiting: dict[K, _Waiting] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._listeners: list[Callable[[], None]] = []

    # -- introspection ------------------------------------------------------------------------
    def __len__(self) -> int:
        """Keys queued and ready to be handed out (not processing, not waiting)."""
        return len(self._queue)

    @property
    def processing(self) -> frozenset[K]:
        return frozenset(self._processing)

    @property
    def waiting(self) -> dict[K, float]:
        """Keys scheduled for later, with their monotonic deadlines."""
        return {key: w.deadline for key, w in self._waiting.items()}

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def is_idle(self, *, count_retries: bool = True) -> bool:
        """Nothing queued, nothing processing and (optionally) no error back-off pending.

        Keys waiting because of a planned ``add_after`` do not count: they are future work;
        error back-offs and debounced events do.
        """
        if self._queue or self._processing:
            return False
        return not (count_retries and any(w.retry for w in self._waiting.values()))

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every state change (used to await idleness)."""
        self._listeners.append(callback)

    def _changed(self) -> None:
        for callback in list(self._listeners):
            callback()

    # -- adding -------------------------------------------------------------------------------
    def add(self, key: K) -> None:
        """Queue ``key`` now (no-op if already queued; deferred if processing).

        A pending debounced add of ``key`` is cancelled (this one supersedes it).
        """
        if self._shutting_down:
            return
        waiting = self._waiting.get(key)
        if waiting is not None and waiting.debounced:
            waiting.handle.cancel()
            del self._waiting[key]
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._wake_one()
        self._changed()

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending deadline wins."""
        self._schedule(key, delay, retry=False)

    def add_debounced(self, key: K, delay: float) -> None:
        """Queue ``key`` after ``delay`` seconds, coalescing every event until then.

        Unlike :meth:`add_after`, the key counts as pending work for :meth:`is_idle`; an
        :meth:`add` before the delay ends supersedes it.
        """
        self._schedule(key, delay, retry=True, debounced=True)

    def cancel_timers(self, key: K) -> None:
        """Drop ``key``'s pending delayed add (planned requeue, debounced event or back-off)."""
        waiting = self._waiting.pop(key, None)
        if waiting is not None:
            waiting.handle.cancel()
            self._changed()

    def add_rate_limited(self, key: K) -> None:
        """Queue ``key`` after the rate limiter's delay for it (counts one more failure)."""
        if self._shutting_down:
            return
        self._schedule(key, self.rate_limiter.when(key), retry=True)

    def forget(self, key: K) -> None:
        """Reset ``key``'s back-off (it does not remove the key from the queue)."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    def _schedule(self, key: K, delay: float, *, retry: bool, debounced: bool = False) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        deadline = self.clock.monotonic() + delay
        current = self._waiting.get(key)
        if current is not None:
            if current.deadline <= deadline:
                current.retry = current.retry or retry
                current.debounced = current.debounced and debounced
                return
            current.handle.cancel()
            retry = retry or current.retry
            debounced = debounced and current.debounced
        handle = self.clock.call_later(delay, lambda: self._fire(key))
        self._waiting[key] = _Waiting(deadline, handle, retry, debounced)
        self._changed()

    def _fire(self, key: K) -> None:
        if self._waiting.pop(key, None) is None:
            return
        if self._shutting_down:
            self._changed()
            return
        self.add(key)
        self._changed()

    # -- processing ---------------------------------------------------------------------------
    async def get(self) -> K:
        """Wait for a key and mark it processing. Raises :class:`QueueShutDown`."""
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown(self.name)
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                # We may have been woken for a key and then cancelled: pass the wake-up on.
                if future.done() and not future.cancelled():
                    self._wake_one()
                raise
            finally:
                if future in self._getters:
                    self._getters.remove(future)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        self._changed()
        return key

    def done(self, key: K) -> None:
        """Mark ``key`` finished; if it was re-added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one()
        if not self._processing:
            for waiter in self._drain_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._drain_waiters.clear()
        self._changed()

    def _wake_one(self) -> None:
        while self._getters:
            future = self._getters.popleft()
            if not future.done():
                future.set_result(None)
                return

    def _wake_all(self) -> None:
        while self._getters:
            future = self._getters.popleft()
            if not future.done():
                future.set_result(None)

    # -- shutdown -----------------------------------------------------------------------------
    def shut_down(self) -> None:
        """Ignore new adds, drop pending delays, wake every waiting ``get``."""
        if not self._shutting_down:
            self._shutting_down = True
            for waiting in self._waiting.values():
                waiting.handle.cancel()
            self._waiting.clear()
        self._wake_all()
        self._changed()

    async def shut_down_with_drain(self) -> None:
        """:meth:`shut_down`, then wait until every key handed out is marked done."""
        self.shut_down()
        while self._processing:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter
