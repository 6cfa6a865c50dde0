"""WorkQueue semantics (client-go workqueue), driven by a fake clock."""

from __future__ import annotations

import asyncio
import random

import pytest

from bobrapet.runtime.clock import FakeClock
from bobrapet.runtime.queue import QueueShutDown, WorkQueue
from bobrapet.runtime.ratelimit import ExponentialBackoff


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def make(clock: FakeClock | None = None, base: float = 0.005, cap: float = 1000.0) -> WorkQueue[str]:
    return WorkQueue(clock=clock or FakeClock(), rate_limiter=ExponentialBackoff(base, cap))


async def test_fifo_order() -> None:
    q = make()
    for key in "abc":
        q.add(key)
    assert len(q) == 3
    assert [await q.get() for _ in range(3)] == ["a", "b", "c"]


async def test_duplicates_collapse_while_queued() -> None:
    q = make()
    q.add("a")
    q.add("b")
    q.add("a")
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"


async def test_key_added_while_processing_is_dirty_and_requeued_on_done() -> None:
    q = make()
    q.add("a")
    key = await q.get()
    q.add("a")
    q.add("a")
    assert len(q) == 0, "a processing key must not be handed out again"
    assert q.processing == {"a"}
    q.done(key)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert q.is_idle()


async def test_done_without_readd_does_not_requeue() -> None:
    q = make()
    q.add("a")
    q.done(await q.get())
    assert len(q) == 0
    assert q.is_idle()


async def test_get_waits_for_add() -> None:
    q = make()
    getter = asyncio.create_task(q.get())
    await settle()
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 5) == "x"


async def test_cancelled_getter_passes_its_wakeup_on() -> None:
    q = make()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await settle()
    q.add("x")  # wakes ``first``
    first.cancel()
    await settle()
    assert first.cancelled()
    assert await asyncio.wait_for(second, 5) == "x"


async def test_no_double_processing_under_many_workers() -> None:
    q = make()
    active: set[str] = set()
    processed: list[str] = []
    violations: list[str] = []
    rng = random.Random(7)
    keys = [f"k{i}" for i in range(8)]
    adds_after_last_processing: dict[str, int] = {}

    async def worker() -> None:
        while True:
            try:
                key = await q.get()
            except QueueShutDown:
                return
            if key in active:
                violations.append(key)
            active.add(key)
            adds_after_last_processing[key] = 0
            for _ in range(rng.randint(0, 3)):
                await asyncio.sleep(0)
            active.discard(key)
            processed.append(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(16)]
    for _ in range(2000):
        key = rng.choice(keys)
        q.add(key)
        adds_after_last_processing[key] = adds_after_last_processing.get(key, 0) + 1
        if rng.random() < 0.5:
            await asyncio.sleep(0)
    while not q.is_idle():
        await asyncio.sleep(0)
    await q.shut_down_with_drain()
    await asyncio.gather(*workers)
    assert violations == []
    # Every add was followed by a processing of its key (nothing lost).
    assert all(count == 0 for count in adds_after_last_processing.values())
    assert set(processed) == set(keys)


async def test_add_after_fires_in_deadline_order() -> None:
    clock = FakeClock()
    q = make(clock)
    q.add_after("a", 3)
    q.add_after("b", 1)
    q.add_after("c", 2)
    assert len(q) == 0
    clock.advance(0.999)
    assert len(q) == 0
    clock.advance(0.001)
    assert len(q) == 1
    clock.advance(5)
    assert [await q.get() for _ in range(3)] == ["b", "c", "a"]


async def test_add_after_earliest_deadline_wins() -> None:
    clock = FakeClock()
    q = make(clock)
    q.add_after("a", 5)
    q.add_after("a", 2)
    clock.advance(2)
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    clock.advance(10)
    assert len(q) == 0, "the superseded later deadline must not fire"

    q.add_after("b", 1)
    q.add_after("b", 5)
    assert q.waiting == {"b": pytest.approx(clock.monotonic() + 1)}
    clock.advance(1)
    assert len(q) == 1
    clock.advance(10)
    assert len(q) == 1


async def test_cancel_timers_drops_every_kind_of_pending_delay() -> None:
    clock = FakeClock()
    q = make(clock)
    q.add_after("a", 1)
    q.add_debounced("b", 1)
    q.add_rate_limited("c")
    for key in "abc":
        q.cancel_timers(key)
    q.cancel_timers("d")  # nothing pending: no-op
    assert q.waiting == {} and q.is_idle()
    clock.advance(10)
    assert len(q) == 0


async def test_add_after_non_positive_delay_adds_now() -> None:
    q = make()
    q.add_after("a", 0)
    q.add_after("b", -1)
    assert len(q) == 2


async def test_add_after_collapses_with_queued_key() -> None:
    clock = FakeClock()
    q = make(clock)
    q.add("a")
    q.add_after("a", 1)
    clock.advance(1)
    assert len(q) == 1


async def test_rate_limiter_backoff_grows_caps_and_forgets() -> None:
    limiter: ExponentialBackoff[str] = ExponentialBackoff(0.005, 0.05)
    delays = [limiter.when("a") for _ in range(6)]
    assert delays == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.05, 0.05])
    assert limiter.num_requeues("a") == 6
    assert limiter.when("b") == pytest.approx(0.005), "back-off is per key"
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == pytest.approx(0.005)


async def test_rate_limiter_never_overflows() -> None:
    limiter: ExponentialBackoff[str] = ExponentialBackoff(0.001, 30)
    for _ in range(2000):
        delay = limiter.when("a")
    assert delay == 30


def test_rate_limiter_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError):
        ExponentialBackoff(0, 1)
    with pytest.raises(ValueError):
        ExponentialBackoff(2, 1)


async def test_add_rate_limited_waits_the_backoff() -> None:
    clock = FakeClock()
    q = make(clock, base=1.0, cap=8.0)
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 1
    clock.advance(0.9)
    assert len(q) == 0
    clock.advance(0.1)
    assert await q.get() == "a"
    q.done("a")
    q.add_rate_limited("a")  # second failure: 2s
    clock.advance(1.5)
    assert len(q) == 0
    clock.advance(0.5)
    assert len(q) == 1
    q.forget("a")
    assert q.num_requeues("a") == 0


async def test_error_backoff_counts_as_pending_work_but_planned_requeue_does_not() -> None:
    clock = FakeClock()
    q = make(clock)
    q.add_after("planned", 60)
    assert q.is_idle()
    q.add_rate_limited("failed")
    assert not q.is_idle()
    assert q.is_idle(count_retries=False)
    clock.advance(1)
    assert not q.is_idle()
    q.done(await q.get())
    assert q.is_idle()


async def test_shutdown_ignores_adds_drops_delays_and_drains_queue() -> None:
    clock = FakeClock()
    q = make(clock)
    q.add("a")
    q.add_after("later", 1)
    q.shut_down()
    q.add("b")
    q.add_rate_limited("c")
    clock.advance(5)
    assert q.waiting == {}
    assert await q.get() == "a", "keys queued before shutdown are still handed out"
    with pytest.raises(QueueShutDown):
        await q.get()


async def test_shutdown_wakes_waiting_getters() -> None:
    q = make()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await settle()
    q.shut_down()
    for getter in getters:
        with pytest.raises(QueueShutDown):
            await asyncio.wait_for(getter, 5)


async def test_shutdown_with_drain_waits_for_in_flight_keys() -> None:
    q = make()
    q.add("a")
    q.add("b")
    a = await q.get()
    b = await q.get()
    drain = asyncio.create_task(q.shut_down_with_drain())
    await settle()
    assert not drain.done()
    q.done(a)
    await settle()
    assert not drain.done()
    q.done(b)
    await asyncio.wait_for(drain, 5)


async def test_shutdown_with_drain_returns_at_once_when_nothing_in_flight() -> None:
    q = make()
    await asyncio.wait_for(q.shut_down_with_drain(), 5)
    assert q.shutting_down


async def test_listeners_see_changes() -> None:
    q = make()
    calls: list[int] = []
    q.add_listener(lambda: calls.append(len(q)))
    q.add("a")
    q.done(await q.get())
    assert len(calls) >= 3


async def test_debounced_events_coalesce_and_count_as_pending_work() -> None:
    clock = FakeClock()
    q = make(clock)
    for _ in range(5):
        q.add_debounced("run", 0.05)
    assert len(q) == 0
    assert not q.is_idle()  # unlike add_after, a debounced key is work already due
    clock.advance(0.05)
    await settle()
    assert len(q) == 1
    assert await q.get() == "run"
    q.done("run")
    assert q.is_idle()


async def test_planned_requeue_is_future_work() -> None:
    clock = FakeClock()
    q = make(clock)
    q.add_after("run", 5.0)
    assert q.is_idle()
