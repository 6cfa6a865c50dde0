"""A token bucket (the rate half of the trigger throttle, reference §5.4 "Throttle").

Invariants: the bucket holds at most ``burst`` tokens and starts full; tokens come back at
``rate`` per second of the injected clock's monotonic time. :meth:`TokenBucket.reserve`
always takes a token, letting the balance go negative, and returns how long the caller must
wait until its token exists (``0`` when one was there), so callers are served in order;
:meth:`TokenBucket.cancel` returns a token a caller reserved but did not use.
"""

from __future__ import annotations

from bobrapet.runtime.clock import Clock


class TokenBucket:
    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = max(int(burst), 1)
        self.clock = clock
        self._tokens = float(self.burst)
        self._last: float | None = None

    def _refill(self) -> None:
        now = self.clock.monotonic()
        if self._last is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now

    @property
    def tokens(self) -> float:
        """Tokens available now (negative: owed to callers already waiting)."""
        self._refill()
        return self._tokens

    def reserve(self) -> float:
        """Take one token; return the seconds until it is available."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def cancel(self) -> None:
        """Give back a token taken by :meth:`reserve` that was not used."""
        self._refill()
        self._tokens = min(float(self.burst), self._tokens + 1.0)
