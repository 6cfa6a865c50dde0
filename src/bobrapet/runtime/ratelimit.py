"""Per-item rate limiters for work queues (client-go ``workqueue`` rate limiters).

A rate limiter answers "how long should this key wait before its next attempt?" and keeps
a per-key failure count. :class:`ExponentialBackoff` is client-go's
``ItemExponentialFailureRateLimiter``: the n-th consecutive failure of a key waits
``base * 2**n`` seconds, capped at ``max_delay``; :meth:`forget` resets the count (called
after a successful reconcile).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class RateLimiter(Protocol[K_contra]):
    def when(self, key: K_contra) -> float:
        """Record one more failure of ``key`` and return its delay in seconds."""
        ...

    def forget(self, key: K_contra) -> None:
        """Stop tracking ``key`` (its next failure starts from the base delay)."""
        ...

    def num_requeues(self, key: K_contra) -> int:
        """Failures recorded for ``key`` since it was last forgotten."""
        ...


class ExponentialBackoff(Generic[K]):
    """``base * 2**failures`` seconds, capped at ``max_delay``.

    Invariant: delays for one key never decrease until :meth:`forget` is called.
    """

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        if base_delay <= 0:
            raise ValueError("base_delay must be positive")
        if max_delay < base_delay:
            raise ValueError("max_delay must not be smaller than base_delay")
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        exponent = self._failures.get(key, 0)
        self._failures[key] = exponent + 1
        # 2**exponent overflows float only far beyond any cap; stop doubling once capped.
        if exponent > 64:
            return self.max_delay
        return min(self.base_delay * float(2**exponent), self.max_delay)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)
