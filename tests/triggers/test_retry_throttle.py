"""Retry back-off and the throttle, on a fake clock with injected randomness (no sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from bobrapet.api.errors import AlreadyExists, Invalid, StatusError
from bobrapet.runtime.clock import FakeClock
from bobrapet.triggers import (
    DeliveryError,
    IdentityConflict,
    RetryPolicy,
    StillPending,
    Throttle,
    ThrottlePolicy,
    TokenBucket,
    is_retryable,
    retry_delay,
    with_retries,
)


def test_delays_follow_the_backoff_and_the_cap() -> None:
    exponential = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=10.0)
    assert [retry_delay(exponential, n, 0.999999) for n in range(1, 6)] == pytest.approx([1, 2, 4, 8, 10])
    linear = RetryPolicy(base_delay=2.0, max_delay=7.0, backoff="linear")
    assert [retry_delay(linear, n, 0.999999) for n in range(1, 5)] == pytest.approx([2, 4, 6, 7])
    constant = RetryPolicy(base_delay=3.0, backoff="constant")
    assert {round(retry_delay(constant, n, 0.999999), 3) for n in range(1, 20)} == {3.0}
    assert retry_delay(exponential, 10_000, 0.999999) == pytest.approx(10)  # no overflow


def test_jitter_stays_between_half_the_delay_and_the_delay() -> None:
    policy = RetryPolicy(base_delay=4.0, max_delay=100.0)
    assert retry_delay(policy, 1, 0.0) == 2.0
    assert retry_delay(policy, 1, 0.5) == 3.0
    assert 2.0 <= retry_delay(policy, 1, 0.999) < 4.0
    assert retry_delay(RetryPolicy(base_delay=50.0, max_delay=60.0), 3, 0.999) <= 60.0


def test_policy_from_the_wire() -> None:
    assert RetryPolicy.from_wire(None) == RetryPolicy(max_attempts=1, base_delay=1.0, max_delay=300.0)
    wire = {"maxAttempts": 4, "baseDelay": "250ms", "maxDelay": "1m", "backoff": "linear"}
    policy = RetryPolicy.from_wire(wire)
    assert policy == RetryPolicy(max_attempts=4, base_delay=0.25, max_delay=60.0, backoff="linear")
    assert RetryPolicy.from_wire({"maxAttempts": 0}).max_attempts == 1
    with pytest.raises(DeliveryError, match="backoff must be one of"):
        RetryPolicy.from_wire({"backoff": "fibonacci"})
    with pytest.raises(DeliveryError, match=r"retry\.baseDelay"):
        RetryPolicy.from_wire({"baseDelay": "soon"})


def test_what_is_retryable() -> None:
    busy = StatusError("the store is busy", reason="ServiceUnavailable", code=503)
    assert is_retryable(busy) and is_retryable(StatusError("slow down", reason="TooManyRequests", code=429))
    assert is_retryable(StillPending("t", "default", 30)) and is_retryable(ConnectionResetError())
    assert not is_retryable(AlreadyExists("StoryTrigger", "t"))
    assert not is_retryable(Invalid("StoryTrigger", "t", []))
    assert not is_retryable(IdentityConflict("t", "default", ["spec.inputs"]))
    assert not is_retryable(ValueError("bug"))


class RecordingClock(FakeClock):
    """A fake clock whose sleeps return at once and are remembered."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


async def test_retries_sleep_the_computed_delays_then_give_up() -> None:
    clock = RecordingClock()
    attempts = 0

    async def busy() -> str:
        nonlocal attempts
        attempts += 1
        raise StatusError("busy", reason="ServiceUnavailable", code=503)

    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=3.0)
    with pytest.raises(StatusError, match="busy"):
        await with_retries(busy, policy, clock=clock, random=lambda: 0.5)
    # four attempts, three waits: 1, 2, 3 (capped), each times 0.5 + 0.5 * 0.5
    assert attempts == 4
    assert clock.sleeps == pytest.approx([0.75, 1.5, 2.25])


async def test_retries_stop_at_success_and_at_a_permanent_error() -> None:
    clock = RecordingClock()
    attempts = 0

    async def second_time_lucky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise StillPending("t", "default", 1.0)
        return "ok"

    assert await with_retries(second_time_lucky, RetryPolicy(max_attempts=5), clock=clock) == "ok"
    assert attempts == 2 and len(clock.sleeps) == 1

    async def conflict() -> str:
        raise IdentityConflict("t", "default", ["spec.inputs"])

    with pytest.raises(IdentityConflict):
        await with_retries(conflict, RetryPolicy(max_attempts=5), clock=clock)
    assert len(clock.sleeps) == 1  # a permanent error is not retried


def test_token_bucket_maths() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 0.5, 1.0]
    clock.advance(1.0)  # two tokens back; two were owed
    assert bucket.tokens == pytest.approx(0.0)
    bucket.cancel()  # the last caller gave up its token
    assert bucket.tokens == pytest.approx(1.0)
    clock.advance(60)
    assert bucket.tokens == 3.0  # never more than the burst
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, clock=clock)


def test_throttle_policy_from_the_wire() -> None:
    assert ThrottlePolicy.from_wire(None) == ThrottlePolicy()
    assert ThrottlePolicy.from_wire({"ratePerSecond": 5, "maxInFlight": 2}) == ThrottlePolicy(5, 0, 2)
    with pytest.raises(DeliveryError, match=r"throttle\.burst must be a non-negative number"):
        ThrottlePolicy.from_wire({"burst": -1})
    assert not Throttle(ThrottlePolicy(), FakeClock()).enabled


async def test_rate_limit_waits_and_says_so() -> None:
    clock = FakeClock()
    throttle = Throttle(ThrottlePolicy(rate_per_second=1), clock)  # burst defaults to the rate
    async with throttle.slot() as first:
        assert not first.waited
    second = asyncio.ensure_future(_enter(throttle))
    await asyncio.sleep(0)
    assert not second.done()
    clock.advance(1.0)
    assert await second is True


async def test_in_flight_limit_holds_the_third_delivery() -> None:
    clock = FakeClock()
    throttle = Throttle(ThrottlePolicy(max_in_flight=2), clock)
    release = asyncio.Event()
    entered: list[bool] = []

    async def deliver() -> None:
        async with throttle.slot() as permit:
            entered.append(permit.waited)
            await release.wait()

    tasks = [asyncio.ensure_future(deliver()) for _ in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert entered == [False, False]  # the third waits for a slot
    release.set()
    await asyncio.gather(*tasks)
    assert entered == [False, False, True]


async def test_a_cancelled_wait_returns_its_token() -> None:
    clock = FakeClock()
    throttle = Throttle(ThrottlePolicy(rate_per_second=1, burst=1), clock)
    async with throttle.slot():
        pass
    waiting = asyncio.ensure_future(_enter(throttle))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    clock.advance(1.0)
    assert await _enter(throttle) is False  # the token the cancelled caller took came back


async def _enter(throttle: Throttle) -> bool:
    async with throttle.slot() as permit:
        return permit.waited
