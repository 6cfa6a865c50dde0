"""How impulse runtimes wait: stop-aware sleeps, back-off after failures, reconnect loops.

Invariants: every wait of a runtime ends as soon as ``stop`` is set (the awaited operation
is cancelled, never left running); waits use the injected clock; consecutive failures wait
longer and longer (doubling, capped) and one success resets the delay. :func:`keep_connected`
re-runs a broker session after any error except :class:`ImpulseFatalError`, so a broker
restart never ends a runtime; its log lines never show a password.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from bobrapet.impulses.config import ImpulseFatalError, display_url
from bobrapet.impulses.context import ImpulseContext
from bobrapet.runtime.clock import Clock
from bobrapet.runtime.ratelimit import ExponentialBackoff
from bobrapet.sdk.redact import redact

T = TypeVar("T")

RECONNECT_BASE = 0.5
RECONNECT_MAX = 30.0
DELIVER_RETRY_BASE = 1.0
DELIVER_RETRY_MAX = 60.0

Session = Callable[[Callable[[], None]], Awaitable[None]]
"""A broker session: connects, calls its argument once connected, consumes until ``stop``."""


class Backoff:
    """Delays for consecutive failures: ``base * 2**n`` seconds, capped; a success resets."""

    def __init__(self, base: float = DELIVER_RETRY_BASE, cap: float = DELIVER_RETRY_MAX) -> None:
        self._limiter: ExponentialBackoff[str] = ExponentialBackoff(base, cap)

    def failed(self) -> float:
        """Record a failure; the delay before the next attempt."""
        return self._limiter.when("")

    def succeeded(self) -> None:
        self._limiter.forget("")

    @property
    def failures(self) -> int:
        return self._limiter.num_requeues("")


async def unless_stopped(operation: Awaitable[T], stop: asyncio.Event) -> T | None:
    """The result of ``operation``, or ``None`` (``operation`` cancelled) once ``stop`` is set."""
    if stop.is_set():
        if asyncio.iscoroutine(operation):
            operation.close()
        return None
    work = asyncio.ensure_future(operation)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (work, stopper):
            if not task.done():
                task.cancel()
        await asyncio.gather(work, stopper, return_exceptions=True)
    if work.cancelled():
        return None
    return work.result()


async def sleep_or_stop(clock: Clock, seconds: float, stop: asyncio.Event) -> bool:
    """Sleep ``seconds`` on ``clock`` unless ``stop`` comes first; return whether it is set."""
    await unless_stopped(clock.sleep(seconds), stop)
    return stop.is_set()


def describe_error(exc: BaseException, url: str | None, context: ImpulseContext) -> str:
    """``Type: message`` of ``exc`` with the URL's password and the secret values hidden."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    terms = context.redact_terms
    if url:
        text = text.replace(url, display_url(url))
        password = urlsplit(url).password
        terms = (*terms, password) if password else terms
    return redact(text, terms)


async def keep_connected(
    session: Session, *, url: str, what: str, context: ImpulseContext, stop: asyncio.Event
) -> None:
    """Run ``session`` until ``stop`` is set, reconnecting with back-off after any failure."""
    backoff = Backoff(RECONNECT_BASE, RECONNECT_MAX)
    while not stop.is_set():
        try:
            await session(backoff.succeeded)
        except ImpulseFatalError:
            raise
        except Exception as exc:
            reason = describe_error(exc, url, context)
        else:
            if stop.is_set():
                return
            reason = "the session ended"
        delay = backoff.failed()
        context.log.warning("%s at %s: %s; reconnecting in %.1fs", what, display_url(url), reason, delay)
        if await sleep_or_stop(context.clock, delay, stop):
            return
