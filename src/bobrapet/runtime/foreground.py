"""Foreground before background: under load, answers go before the engine's own work.

In ``bobrapet serve`` the HTTP intake (a webhook delivery waiting for its 202, an API write)
and the engine (reconciles) share one event loop. Under a burst, deliveries and the
reconciles they cause interleave evenly, and every answer waits behind engine work it does
not need: a delivery is durable once its StoryTrigger is stored, its run can start a moment
later. :class:`Foreground` lets the intake mark the work it serves
(:meth:`Foreground.serving`) and makes the engine's work items take turns
(:meth:`Foreground.background`) while the intake is *busy*.

Busy is a rate, not a count in flight: a request is usually handled within one step of the
event loop, so the intake is busy while the recent rate of foreground blocks (an
exponentially weighted rate with time constant ``window``) is at least ``busy_rate`` per
second. A steady trickle of deliveries (one every few tens of milliseconds) never slows the
engine; a burst does.

Invariants:

* **free when idle** — while not busy and nobody waits, a background item starts at once and
  nothing is measured (no cost for batch runs or a quiet service);
* **first come, first served** — items that had to wait start in the order they arrived;
* **one at a time while busy** — a waiting item starts only when no other background item
  runs and the previous one's pause is over;
* **bounded share** — after a background item that ended while busy, the next one waits
  ``duration * (1 - share) / share`` (at most ``max_pause``), so background work keeps about
  ``share`` of the time while the load lasts;
* **no stampede** — once the burst is over, the items that waited start one per step of the
  event loop, not all in one step (which would hold every request and timer up for as long
  as they all take);
* **never starved** — no item waits longer than ``max_wait`` for its turn (a safety valve,
  not a schedule);
* the time source is injectable (``now``); every method runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator

#: Default share of the time background work keeps while the foreground is busy.
SHARE = 0.25
#: Foreground blocks per second from which the foreground is busy.
BUSY_RATE = 200.0
#: Time constant of the foreground's rate (seconds).
WINDOW = 0.05
#: Longest pause after one background item.
MAX_PAUSE = 0.1
#: Longest a background item waits for its turn.
MAX_WAIT = 5.0


class Foreground:
    """See the module docstring."""

    def __init__(
        self,
        *,
        share: float = SHARE,
        busy_rate: float = BUSY_RATE,
        window: float = WINDOW,
        max_pause: float = MAX_PAUSE,
        max_wait: float = MAX_WAIT,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError("share must be in (0, 1]")
        if busy_rate <= 0 or window <= 0:
            raise ValueError("busy_rate and window must be positive")
        self.share = share
        self.busy_rate = busy_rate
        self.window = window
        self.max_pause = max_pause
        self.max_wait = max_wait
        self._now = now
        self._rate = 0.0
        self._rated_at = 0.0
        #: Background items running, counting those released but not started yet.
        self._running = 0
        self._resume_at = -math.inf
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._release: asyncio.Handle | None = None

    def rate(self, now: float | None = None) -> float:
        """Foreground blocks per second, exponentially weighted over ``window``."""
        now = self._now() if now is None else now
        return self._rate * math.exp(-max(0.0, now - self._rated_at) / self.window)

    @property
    def busy(self) -> bool:
        return self.rate() >= self.busy_rate

    @property
    def waiting(self) -> int:
        """Background items waiting for their turn."""
        return sum(1 for w in self._waiters if not w.done())

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Mark the block as foreground work (nestable, concurrent)."""
        try:
            yield
        finally:
            now = self._now()
            self._rate = self.rate(now) + 1.0 / self.window
            self._rated_at = now

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Run the block as one background item (see the module invariants)."""
        if self._waiters or self.busy:
            await self._turn()  # counted as running once released
        else:
            self._running += 1
        started = self._now()
        try:
            yield
        finally:
            self._running -= 1
            ended = self._now()
            if self.rate(ended) >= self.busy_rate:
                pause = (ended - started) * (1.0 - self.share) / self.share
                self._resume_at = max(self._resume_at, ended + min(pause, self.max_pause))
            self._schedule()

    async def _turn(self) -> None:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        self._schedule()
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.max_wait)
        except TimeoutError:  # the safety valve: go anyway
            if turn.done():
                return  # released just as the wait timed out: already counted
            turn.cancel()
            self._running += 1
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._running -= 1  # released, but will never run
                self._schedule()
            turn.cancel()
            raise

    def _schedule(self) -> None:
        """Arrange the release of the first waiting item (at most one release pending)."""
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        if not self._waiters or self._release is not None:
            return
        loop = asyncio.get_running_loop()
        now = self._now()
        rate = self.rate(now)
        if rate < self.busy_rate:
            self._release = loop.call_soon(self._release_one)  # one per step of the loop
            return
        if self._running:
            return  # the running item's end schedules again
        quiet_at = now + self.window * math.log(rate / self.busy_rate)
        delay = max(0.0, min(self._resume_at, quiet_at) - now)
        self._release = loop.call_later(delay, self._release_one)

    def _release_one(self) -> None:
        self._release = None
        if self.busy and (self._running or self._now() < self._resume_at):
            self._schedule()  # not this one's turn yet (the burst went on)
            return
        while self._waiters:
            turn = self._waiters.popleft()
            if not turn.done():
                self._running += 1
                turn.set_result(None)
                break
        self._schedule()
