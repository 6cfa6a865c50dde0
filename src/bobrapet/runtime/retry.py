"""Optimistic-concurrency retry for read-modify-write updates (client-go ``RetryOnConflict``).

``fn`` must re-read the object it modifies on every call: a ``Conflict`` means someone
wrote in between, and writing the same stale copy again can only conflict again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from bobrapet.api.errors import StatusError
from bobrapet.runtime.clock import Clock

T = TypeVar("T")


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, StatusError) and exc.reason == "Conflict"


async def retry_on_conflict(
    fn: Callable[[], Awaitable[T]],
    attempts: int = 5,
    *,
    clock: Clock | None = None,
    delay: float = 0.0,
) -> T:
    """Call ``fn`` until it does not raise ``Conflict``, at most ``attempts`` times.

    Between attempts it sleeps ``delay * 2**n`` seconds on ``clock`` (no sleep when
    ``delay`` is 0). The last ``Conflict`` propagates; any other error propagates at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return await fn()
        except StatusError as exc:
            if not is_conflict(exc) or attempt == attempts - 1:
                raise
        if delay > 0 and clock is not None:
            await clock.sleep(delay * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover
