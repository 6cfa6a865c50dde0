"""The trigger throttle: a rate limit (token bucket) and a limit of deliveries in flight.

Invariants: a :class:`Throttle` built from a policy whose limits are all ``<= 0`` lets
everything through at once; a delivery holds its in-flight slot from :meth:`Throttle.slot`
entry to exit (waiting first for a slot, then for a token); the :class:`Permit` it yields
says whether it had to wait (impulses count such deliveries in
``Impulse.status.throttledTriggers``). A delivery cancelled while waiting gives its token
and its slot back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.triggers.errors import DeliveryError
from bobrapet.triggers.tokenbucket import TokenBucket


@dataclass(frozen=True)
class ThrottlePolicy:
    """``ratePerSecond``/``burst``/``maxInFlight``; ``<= 0`` disables a limit, burst defaults to the rate."""

    rate_per_second: float = 0.0
    burst: int = 0
    max_in_flight: int = 0

    @classmethod
    def from_wire(cls, policy: Mapping[str, Any] | None) -> ThrottlePolicy:
        policy = policy or {}
        values: dict[str, float] = {}
        for field in ("ratePerSecond", "burst", "maxInFlight"):
            value = policy.get(field)
            if value is None:
                values[field] = 0
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise DeliveryError(f"throttle.{field} must be a non-negative number, got {value!r}")
            else:
                values[field] = value
        return cls(values["ratePerSecond"], int(values["burst"]), int(values["maxInFlight"]))


@dataclass(frozen=True)
class Permit:
    #: The delivery waited for a slot or a token.
    waited: bool


class Throttle:
    def __init__(self, policy: ThrottlePolicy, clock: Clock | None = None) -> None:
        self.policy = policy
        self.clock = clock or RealClock()
        rate = policy.rate_per_second
        burst = policy.burst if policy.burst > 0 else max(int(rate), 1)
        self._bucket = TokenBucket(rate, burst, self.clock) if rate > 0 else None
        self._slots = asyncio.Semaphore(policy.max_in_flight) if policy.max_in_flight > 0 else None

    @property
    def enabled(self) -> bool:
        return self._bucket is not None or self._slots is not None

    async def _token(self) -> bool:
        if self._bucket is None:
            return False
        delay = self._bucket.reserve()
        if delay <= 0:
            return False
        try:
            await self.clock.sleep(delay)
        except BaseException:
            self._bucket.cancel()
            raise
        return True

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit]:
        """Hold one delivery's place for the duration of the ``async with``."""
        waited = False
        if self._slots is not None:
            waited = self._slots.locked()
            await self._slots.acquire()
        try:
            waited = await self._token() or waited
            yield Permit(waited)
        finally:
            if self._slots is not None:
                self._slots.release()
