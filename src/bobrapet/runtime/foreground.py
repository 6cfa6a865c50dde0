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
second. A steady trickle of deliveries (a webhook every few tens of milliseconds) never
slows the engine; a burst does.

Invariants:

* **free when not busy** — a background item then starts at once and nothing is measured
  (no cost for batch runs or a quiet service);
* **one at a time while busy** — a background item starts only when no other background
  item is running and the previous one's pause is over;
* **bounded share** — after a background item that ended while busy, the next one waits
  ``duration * (1 - share) / share`` (at most ``max_pause``), so background work keeps about
  ``share`` of the time while the load lasts;
* **never starved** — no background item waits longer than ``max_wait`` for its turn (a
  safety valve, not a schedule), and every wait ends once the intake is no longer busy;
* the time source is injectable (``now``); every method runs on the event loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
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
        self._running = 0
        self._resume_at = -math.inf
        self._changed = asyncio.Event()

    def rate(self, now: float | None = None) -> float:
        """Foreground blocks per second, exponentially weighted over ``window``."""
        now = self._now() if now is None else now
        return self._rate * math.exp(-max(0.0, now - self._rated_at) / self.window)

    @property
    def busy(self) -> bool:
        return self.rate() >= self.busy_rate

    def _quiet_at(self, now: float) -> float:
        """When the rate falls below ``busy_rate`` if nothing more is served."""
        rate = self.rate(now)
        return now if rate < self.busy_rate else now + self.window * math.log(rate / self.busy_rate)

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
        if self.busy:
            await self._turn()
        started = self._now()
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            ended = self._now()
            if self.rate(ended) >= self.busy_rate:
                pause = (ended - started) * (1.0 - self.share) / self.share
                self._resume_at = max(self._resume_at, ended + min(pause, self.max_pause))
            self._changed.set()

    async def _turn(self) -> None:
        deadline = self._now() + self.max_wait
        while True:
            now = self._now()
            quiet_at = self._quiet_at(now)
            if now >= deadline or now >= quiet_at:
                return
            if not self._running and now >= self._resume_at:
                return
            until = min(deadline, quiet_at) if self._running else min(self._resume_at, deadline, quiet_at)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), until - now)
