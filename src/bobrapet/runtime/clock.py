"""Injectable time (DESIGN contract 7).

A :class:`Clock` gives wall time (``now``, timezone-aware UTC), a monotonic reading
(``monotonic``, seconds) used for delays, ``sleep`` and ``call_later`` timers.
:class:`RealClock` maps them onto the running asyncio loop; :class:`FakeClock` only moves
when a test calls :meth:`FakeClock.advance`, firing due timers in deadline order, so
delays, back-offs and timeouts are tested without real sleeping.

Invariant: a timer never fires before its deadline on the clock it was scheduled on, and
timers with equal deadlines fire in scheduling order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class TimerHandle(Protocol):
    """A scheduled callback that can be cancelled before it fires."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime:
        """Current wall time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend for ``seconds`` of this clock's time."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` (on the event loop) once ``delay`` seconds have passed."""
        ...


class RealClock:
    """The system clock and the running loop's timers."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "deadline", "seq")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _FakeTimer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class FakeClock:
    """A clock that only moves when told to.

    ``advance(seconds)`` moves time forward step by step through every due timer, firing
    each callback at its own deadline (so a callback that schedules another timer inside
    the advanced window sees it fire too).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._start.tzinfo is None:
            self._start = self._start.replace(tzinfo=UTC)
        self._offset = 0.0
        self._timers: list[_FakeTimer] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._offset)

    def monotonic(self) -> float:
        return self._offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(self._offset + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        handle = self.call_later(seconds, wake)
        try:
            await future
        finally:
            handle.cancel()

    @property
    def pending_timers(self) -> int:
        """Timers scheduled and not yet fired or cancelled."""
        return sum(1 for t in self._timers if not t.cancelled)

    def next_deadline(self) -> float | None:
        """Monotonic time of the earliest live timer, or ``None``."""
        self._drop_cancelled()
        return self._timers[0].deadline if self._timers else None

    def _drop_cancelled(self) -> None:
        while self._timers and self._timers[0].cancelled:
            heapq.heappop(self._timers)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in deadline order."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        target = self._offset + seconds
        while True:
            self._drop_cancelled()
            if not self._timers or self._timers[0].deadline > target:
                break
            timer = heapq.heappop(self._timers)
            self._offset = max(self._offset, timer.deadline)
            timer.callback()
        self._offset = target
