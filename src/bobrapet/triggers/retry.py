"""Retrying a trigger delivery after a transient failure (reference §5.4 "Retries").

Invariants:

* ``max_attempts`` counts every attempt (``1``, the default, means no retry; ``0`` is read
  as ``1``); only :func:`is_retryable` errors are retried, the last error propagates.
* The delay before retry ``n`` (1 = first retry) is ``base_delay`` times ``2**(n-1)``
  (exponential), ``n`` (linear) or ``1`` (constant), capped at ``max_delay``, then jittered
  into ``[delay/2, delay]`` by the injected ``random()`` value — never above the cap.
* Time and randomness are injected (:class:`~bobrapet.runtime.clock.Clock`, a
  ``() -> float`` in ``[0, 1)``), so the maths is tested without sleeping.
"""

from __future__ import annotations

import random as _random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast, get_args

from bobrapet.api.durations import parse_duration
from bobrapet.api.errors import StatusError
from bobrapet.runtime.clock import Clock, RealClock
from bobrapet.triggers.errors import DeliveryError, TriggerError

T = TypeVar("T")
Backoff = Literal["exponential", "linear", "constant"]
BACKOFFS: tuple[str, ...] = get_args(Backoff)

DEFAULT_BASE_DELAY = 1.0
DEFAULT_MAX_DELAY = 300.0
#: Store errors a later attempt may not see (Kubernetes: server busy, throttled, timed out).
RETRYABLE_REASONS = frozenset(
    {"ServiceUnavailable", "TooManyRequests", "ServerTimeout", "Timeout", "InternalError"}
)
_MAX_EXPONENT = 62


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 1
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    backoff: Backoff = "exponential"

    @classmethod
    def from_wire(cls, policy: Mapping[str, Any] | None) -> RetryPolicy:
        """From a ``deliveryPolicy.retry`` object (``maxAttempts``, ``baseDelay``, ...)."""
        policy = policy or {}
        backoff = policy.get("backoff") or "exponential"
        if backoff not in BACKOFFS:
            raise DeliveryError(f"retry.backoff must be one of {', '.join(BACKOFFS)}, got {backoff!r}")
        attempts = policy.get("maxAttempts")
        return cls(
            max_attempts=int(attempts) if isinstance(attempts, int) and attempts > 0 else 1,
            base_delay=_seconds(policy.get("baseDelay"), "retry.baseDelay", DEFAULT_BASE_DELAY),
            max_delay=_seconds(policy.get("maxDelay"), "retry.maxDelay", DEFAULT_MAX_DELAY),
            backoff=cast(Backoff, backoff),
        )


def _seconds(value: Any, field: str, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        seconds = parse_duration(value).total_seconds()
    except ValueError as err:
        raise DeliveryError(f"{field}: {err}") from None
    return seconds if seconds > 0 else default


def retry_delay(policy: RetryPolicy, retry: int, fraction: float) -> float:
    """Seconds to wait before retry number ``retry`` (1 = first); ``fraction`` in ``[0, 1)``."""
    base = policy.base_delay if policy.base_delay > 0 else DEFAULT_BASE_DELAY
    cap = policy.max_delay if policy.max_delay > 0 else DEFAULT_MAX_DELAY
    n = max(retry, 1)
    if policy.backoff == "constant":
        delay = base
    elif policy.backoff == "linear":
        delay = base * n
    else:
        delay = base * float(2 ** min(n - 1, _MAX_EXPONENT))
    delay = min(delay, cap)
    return delay * (0.5 + 0.5 * min(max(fraction, 0.0), 1.0))


def is_retryable(exc: BaseException) -> bool:
    """Whether submitting again may succeed where this error failed."""
    if isinstance(exc, TriggerError):
        return exc.retryable
    if isinstance(exc, StatusError):
        return exc.reason in RETRYABLE_REASONS or exc.code in (429, 500, 502, 503, 504)
    return isinstance(exc, ConnectionError | TimeoutError)


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    clock: Clock | None = None,
    random: Callable[[], float] = _random.random,
) -> T:
    """Call ``attempt`` until it succeeds, fails for good, or ``policy.max_attempts`` ran out."""
    clock = clock or RealClock()
    attempts = max(policy.max_attempts, 1)
    for number in range(1, attempts + 1):
        try:
            return await attempt()
        except Exception as exc:
            if number == attempts or not is_retryable(exc):
                raise
        await clock.sleep(retry_delay(policy, number, random()))
    raise AssertionError("unreachable")  # pragma: no cover
